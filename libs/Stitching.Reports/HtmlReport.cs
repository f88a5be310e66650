using System.Net;
using System.Text;
using Markdig;

namespace Stitching.Reports;

/// <summary>
/// One self-contained HTML page from a report's Markdown and its figures: Markdown (pipe tables, code blocks) through
/// Markdig, each figure embedded as a base64 PNG at the end of the section it belongs to, inline CSS, no scripts
/// and no external resources, so the file can be mailed, archived or opened offline.
/// </summary>
public static class HtmlReport
{
    /// <summary>Report sections by the start of their Markdown heading (the main job's and the eval commands' headings).</summary>
    private static readonly (string Heading, string Section)[] Sections =
    [
        ("Spliced next-token", "splice"), ("SAE evaluation", "sae_eval"), ("SAE transfer", "sae"), ("Probe transfer", "probes"),
        ("Steering transfer", "steering"), ("Feature-level transfer", "features"), ("Points", "points"),
    ];

    private static readonly MarkdownPipeline Pipeline = new MarkdownPipelineBuilder().UsePipeTables().UseAutoIdentifiers().Build();

    public static string Render(string title, string markdown, IReadOnlyList<Figure> figures, string? note = null)
    {
        var placed = new HashSet<Figure>();
        var md = new StringBuilder();
        string? section = null;
        void Flush()
        {
            if (section is null) return;
            foreach (var f in figures.Where(f => f.Section == section && placed.Add(f))) md.Append(FigureHtml(f));
        }
        foreach (var line in markdown.Split('\n'))
        {
            if (line.StartsWith("## ", StringComparison.Ordinal))
            {
                Flush();
                section = Sections.FirstOrDefault(s => line[3..].StartsWith(s.Heading, StringComparison.Ordinal)).Section;
            }
            md.Append(line).Append('\n');
        }
        Flush();
        var rest = figures.Where(f => !placed.Contains(f)).ToList();
        if (rest.Count > 0)
        {
            md.Append("\n## Figures\n\n");
            foreach (var f in rest) md.Append(FigureHtml(f));
        }
        if (note is not null) md.Append($"\n<p class=\"note\">{WebUtility.HtmlEncode(note)}</p>\n");
        var body = Markdown.ToHtml(md.ToString(), Pipeline);
        return $$"""
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{{WebUtility.HtmlEncode(title)}}</title>
            <style>
            body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #1b1b1b; line-height: 1.45; }
            h1 { font-size: 1.6em; border-bottom: 2px solid #ddd; padding-bottom: .3em; }
            h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #eee; padding-bottom: .2em; }
            table { border-collapse: collapse; margin: 1em 0; font-size: .85em; display: block; overflow-x: auto; }
            th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: right; white-space: nowrap; }
            th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
            pre { background: #f7f7f7; padding: .8em; overflow-x: auto; font-size: .8em; }
            figure { margin: 1.5em 0; } figure img { max-width: 100%; border: 1px solid #e5e5e5; }
            figcaption { font-size: .85em; color: #555; max-width: 720px; }
            .note { color: #8a4b00; }
            </style>
            </head>
            <body>
            {{body}}
            </body>
            </html>
            """;
    }

    private static string FigureHtml(Figure f) =>
        $"\n<figure id=\"fig-{f.Name}\"><img src=\"data:image/png;base64,{Convert.ToBase64String(f.Png)}\" alt=\"{WebUtility.HtmlEncode(f.Caption)}\" width=\"{ReportFigures.Width}\" height=\"{ReportFigures.Height}\">" +
        $"<figcaption>{WebUtility.HtmlEncode(f.Caption)}</figcaption></figure>\n\n";
}
