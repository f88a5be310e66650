using System.Text.Json;
using System.Text.RegularExpressions;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Deploy;

/// <summary>
/// One of deploy/docker/*.Dockerfile as the tests read it: the image names it documents (label dev.stitching.images),
/// its entry point, health check, user, port and the `dotnet publish` step of its build stage.
/// </summary>
public sealed partial record Dockerfile(
    string Path,
    IReadOnlyList<string> Images,
    IReadOnlyList<string> Entrypoint,
    IReadOnlyList<string> Cmd,
    IReadOnlyList<string> Healthcheck,
    IReadOnlyList<string> PublishProjects,
    IReadOnlyList<string> PublishArguments,
    string User,
    IReadOnlyList<int> Exposed,
    IReadOnlyList<(string Base, string? Stage)> Stages,
    IReadOnlyDictionary<string, string> ArgDefaults)
{
    public string FileName => System.IO.Path.GetFileName(Path);

    /// <summary>Every Dockerfile under deploy/docker, by file name.</summary>
    public static IReadOnlyList<Dockerfile> All() =>
        Directory.GetFiles(System.IO.Path.Combine(Python.RepoRoot(), "deploy", "docker"), "*.Dockerfile")
            .Order(StringComparer.Ordinal).Select(Load).ToList();

    /// <summary>The Dockerfile whose documented names include <paramref name="image"/> (a name, without tag).</summary>
    public static Dockerfile? For(IEnumerable<Dockerfile> all, string image) => all.SingleOrDefault(d => d.Images.Contains(image));

    /// <summary>The image name without its tag (stitching/sae:latest-cuda -> stitching/sae).</summary>
    public static string NameOf(string image)
    {
        var slash = image.LastIndexOf('/');
        var colon = image.IndexOf(':', slash + 1);
        return colon < 0 ? image : image[..colon];
    }

    public static string? TagOf(string image)
    {
        var slash = image.LastIndexOf('/');
        var colon = image.IndexOf(':', slash + 1);
        return colon < 0 ? null : image[(colon + 1)..];
    }

    /// <summary>The publish arguments with the build arguments' defaults filled in (TORCH_BACKEND=cpu).</summary>
    public IReadOnlyList<string> PublishArgumentsWithDefaults() =>
        PublishArguments.Select(a => VariableReference().Replace(a, m => ArgDefaults[m.Groups[1].Value])).ToList();

    public static Dockerfile Load(string path)
    {
        var instructions = Instructions(File.ReadAllLines(path));
        string[] JsonArray(string text) => JsonSerializer.Deserialize<string[]>(text) ?? throw new FormatException($"{path}: not a JSON array: {text}");
        string Single(string keyword) => instructions.Single(i => i.Keyword == keyword).Args;

        var labels = instructions.Where(i => i.Keyword == "LABEL").SelectMany(i => LabelPair().Matches(i.Args))
            .ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        var args = instructions.Where(i => i.Keyword == "ARG" && i.Args.Contains('='))
            .Select(i => i.Args.Split('=', 2)).GroupBy(kv => kv[0]).ToDictionary(g => g.Key, g => g.First()[1]);
        var publish = instructions.Where(i => i.Keyword == "RUN").Select(i => PublishLoop().Match(i.Args)).Single(m => m.Success);
        var health = Single("HEALTHCHECK");
        var cmd = instructions.Where(i => i.Keyword == "CMD").Select(i => JsonArray(i.Args)).SingleOrDefault() ?? [];
        return new Dockerfile(
            path,
            labels.TryGetValue("dev.stitching.images", out var images) ? images.Split(' ', StringSplitOptions.RemoveEmptyEntries) : [],
            JsonArray(Single("ENTRYPOINT")),
            cmd,
            JsonArray(health[(health.IndexOf("CMD ", StringComparison.Ordinal) + 4)..]),
            publish.Groups["projects"].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries),
            publish.Groups["args"].Value.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(a => a.Replace("\"", "")).ToList(),
            Single("USER"),
            instructions.Where(i => i.Keyword == "EXPOSE").SelectMany(i => i.Args.Split(' ')).Select(p => int.Parse(p.Split('/')[0])).ToList(),
            instructions.Where(i => i.Keyword == "FROM").Select(i => i.Args.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Select(f => (f[0], f.Length >= 3 && f[1].Equals("AS", StringComparison.OrdinalIgnoreCase) ? f[2] : (string?)null)).ToList(),
            args);
    }

    /// <summary>Instructions with continuation lines joined and comments dropped (as the Dockerfile parser does).</summary>
    private static List<(string Keyword, string Args)> Instructions(IEnumerable<string> lines)
    {
        var result = new List<(string, string)>();
        var current = "";
        foreach (var raw in lines)
        {
            var line = raw.Trim();
            if (line.StartsWith('#') || line.Length == 0) continue;
            var continued = line.EndsWith('\\');
            current += (current.Length > 0 ? " " : "") + (continued ? line[..^1].TrimEnd() : line);
            if (continued) continue;
            var space = current.IndexOf(' ');
            result.Add((current[..space].ToUpperInvariant(), Whitespace().Replace(current[(space + 1)..], " ").Trim()));
            current = "";
        }
        return result;
    }

    [GeneratedRegex(@"([\w.\-]+)=""([^""]*)""")]
    private static partial Regex LabelPair();

    [GeneratedRegex(@"for project in (?<projects>[^;]+); do dotnet publish ""\$project"" (?<args>.+?) -o /app")]
    private static partial Regex PublishLoop();

    [GeneratedRegex(@"\$\{?([A-Z_]+)\}?")]
    private static partial Regex VariableReference();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Whitespace();
}
