using System.Text.Json;
using System.Text.Json.Nodes;

namespace Stitching.Reports;

/// <summary>The files of one written report.</summary>
public sealed record ReportFiles(string Markdown, string Json, string Html, IReadOnlyList<string> Figures, string? FiguresSkipped);

/// <summary>A report rendered in memory: its JSON text, its self-contained HTML and its figures.</summary>
public sealed record RenderedReport(string Json, string Html, IReadOnlyList<Figure> Figures, string? FiguresSkipped);

/// <summary>
/// Writes a report next to each other: NAME.md, NAME.json, NAME.html (self-contained) and NAME-figures/*.png.
/// When the figures cannot be drawn (no usable font or native Skia library on the machine) the report is still
/// written, with the reason in the HTML and in <see cref="ReportFiles.FiguresSkipped"/>.
/// </summary>
public static class ReportWriter
{
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };

    public static ReportFiles Write(string markdownPath, string title, string markdown, JsonObject json) =>
        Write(markdownPath, markdown, Render(title, markdown, json));

    /// <summary>Writes an already rendered report (e.g. one downloaded from a "report" artifact).</summary>
    public static ReportFiles Write(string markdownPath, string markdown, RenderedReport r)
    {
        var full = Path.GetFullPath(markdownPath);
        Directory.CreateDirectory(Path.GetDirectoryName(full)!);
        var stem = Path.Combine(Path.GetDirectoryName(full)!, Path.GetFileNameWithoutExtension(full));
        File.WriteAllText(full, markdown);
        File.WriteAllText(stem + ".json", r.Json);
        var folder = stem + "-figures";
        var written = new List<string>();
        if (r.Figures.Count > 0)
        {
            Directory.CreateDirectory(folder);
            foreach (var f in r.Figures)
            {
                var path = Path.Combine(folder, f.Name + ".png");
                File.WriteAllBytes(path, f.Png);
                written.Add(path);
            }
        }
        File.WriteAllText(stem + ".html", r.Html);
        return new ReportFiles(full, stem + ".json", stem + ".html", written, r.FiguresSkipped);
    }

    /// <summary>
    /// Draws the figures and the HTML page of a report. When the figures cannot be drawn (no usable font or native Skia
    /// library on the machine) the page says why and <see cref="RenderedReport.FiguresSkipped"/> holds the reason.
    /// </summary>
    public static RenderedReport Render(string title, string markdown, JsonObject json)
    {
        IReadOnlyList<Figure> figures = [];
        string? skipped = null;
        try { figures = ReportFigures.All(json); }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or EntryPointNotFoundException)
        {
            skipped = $"figures not drawn: the plotting library could not load ({e.GetBaseException().Message}); install fontconfig and a font (Debian: fonts-dejavu-core).";
        }
        return new RenderedReport(json.ToJsonString(Indented), HtmlReport.Render(title, markdown, figures, skipped), figures, skipped);
    }

    /// <summary>
    /// A report.json from one evaluation's JSON (what `stitch eval ... --json` prints), wrapped under its section key so the
    /// figures read it as they read the main job's: probes (a list), steering, features, sae_eval (a list of rows).
    /// A main-job report (it has a "schema") is returned as it is.
    /// </summary>
    public static JsonObject Wrap(JsonObject evaluation)
    {
        if (evaluation.ContainsKey("schema")) return evaluation;
        JsonNode Copy() => JsonNode.Parse(evaluation.ToJsonString())!;
        if (evaluation.ContainsKey("tasks")) return new JsonObject { ["schema"] = "stitching.eval-report/1", ["probes"] = new JsonArray(Copy()) };
        if (evaluation.ContainsKey("conditions")) return new JsonObject { ["schema"] = "stitching.eval-report/1", ["steering"] = Copy() };
        if (evaluation.ContainsKey("groups")) return new JsonObject { ["schema"] = "stitching.eval-report/1", ["features"] = Copy() };
        if (evaluation.ContainsKey("fvu") && evaluation.ContainsKey("ce_delta")) return new JsonObject { ["schema"] = "stitching.eval-report/1", ["sae_eval"] = new JsonArray(Copy()) };
        throw new ArgumentException("not a report: expected a main-job report (with \"schema\") or the JSON of stitch eval sae, probes, steering or features.");
    }
}
