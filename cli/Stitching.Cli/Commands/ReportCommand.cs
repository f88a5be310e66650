using System.CommandLine;
using System.Text.Json.Nodes;
using Stitching.Reports;

namespace Stitching.Cli.Commands;

/// <summary>
/// Reports on disk: `stitch eval report FILE.json` renders any report.json (the main job's, or what an eval command
/// printed with --json) to Markdown, JSON, a self-contained HTML page and PNG figures; every eval command takes
/// --report PATH.md to write the same next to its usual output.
/// </summary>
public static class ReportCommand
{
    public static readonly Option<string?> ReportOption = new("--report") { Description = "Also write PATH.md, PATH.json, PATH.html (self-contained, figures embedded) and PATH-figures/*.png." };

    public static Command Create()
    {
        var file = new Argument<string>("FILE") { Description = "A report.json: the main job's, or the output of stitch eval sae|probes|steering|features --json." };
        var output = new Option<string?>("--out") { Description = "Report path PATH.md (default: FILE with .md; an existing Markdown report beside FILE is kept as the text)." };
        var command = new Command("report", "Render a report.json to Markdown, HTML (figures embedded) and PNG figures.") { file, output };
        command.SetAction(parse =>
        {
            var path = Path.GetFullPath(parse.GetValue(file)!);
            if (!File.Exists(path)) throw new ArgumentException($"FILE: {path} does not exist.");
            var node = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new ArgumentException($"FILE: {path} is not a JSON object.");
            var report = ReportWriter.Wrap(node);
            var md = Path.ChangeExtension(path, ".md");
            var markdown = File.Exists(md) ? File.ReadAllText(md) : Headings(report, $"Report rendered from {Path.GetFileName(path)}");
            var files = ReportWriter.Write(parse.GetValue(output) ?? md, Title(markdown), markdown, report);
            CliOutput.Print(parse, files, () => Print(files));
            return 0;
        });
        return command;
    }

    /// <summary>Writes an evaluation's report when --report was given (paths on stderr, so --json output stays one object).</summary>
    public static void WriteIfAsked(ParseResult parse, string heading, string markdown, JsonObject json)
    {
        if (parse.GetValue(ReportOption) is not { } path) return;
        var full = $"# {heading}\n\n## {heading}\n\n{markdown}";
        Print(ReportWriter.Write(path, heading, full, ReportWriter.Wrap(json)), Console.Error);
    }

    public static void Print(ReportFiles f, TextWriter? to = null)
    {
        to ??= Console.Out;
        to.WriteLine($"\nreport: {f.Markdown}\njson:   {f.Json}\nhtml:   {f.Html}" + (f.Figures.Count > 0 ? $"\nfigures: {f.Figures.Count} in {Path.GetDirectoryName(f.Figures[0])}" : ""));
        if (f.FiguresSkipped is not null) to.WriteLine(f.FiguresSkipped);
    }

    private static string Title(string markdown) =>
        markdown.Split('\n').FirstOrDefault(l => l.StartsWith("# ", StringComparison.Ordinal))?[2..].Trim() ?? "Stitching report";

    /// <summary>A Markdown skeleton with one heading per section the report holds, for a JSON rendered without its text.</summary>
    private static string Headings(JsonObject report, string title)
    {
        var sections = new (string Key, string Heading)[]
        {
            ("splice", "Spliced next-token cross-entropy"), ("sae", "SAE transfer and warm start"), ("sae_eval", "SAE evaluation"),
            ("probes", "Probe transfer"), ("steering", "Steering transfer"), ("features", "Feature-level transfer"),
        };
        return $"# {title}\n\n" + string.Concat(sections.Where(s => report.ContainsKey(s.Key)).Select(s => $"## {s.Heading}\n\nFigures drawn from the JSON; its numbers are in the .json file.\n\n"));
    }
}
