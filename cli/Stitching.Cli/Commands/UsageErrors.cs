using System.CommandLine;
using System.CommandLine.Parsing;

namespace Stitching.Cli.Commands;

/// <summary>What the parser refused, as the one line a user reads (Program.cs prints it and exits 2) instead of the help page.</summary>
public static class UsageErrors
{
    /// <summary>
    /// The errors (only the unknown word when there is one, with the subcommand it most likely meant), then
    /// where the usage is: "Option '--sae' is required (see `stitch sae describe --help`)."
    /// </summary>
    public static string Sentence(ParseResult parse)
    {
        var path = new List<string>();
        for (var r = parse.CommandResult; r is not null; r = r.Parent as CommandResult) path.Insert(0, r.Command.Name);
        var errors = parse.Errors.Select(x => x.Message.ReplaceLineEndings(" ").Trim().TrimEnd('.')).Distinct().ToList();
        var unknown = errors.Where(x => parse.UnmatchedTokens.Any(t => x.Contains($"'{t}'", StringComparison.Ordinal))).ToList();
        var guess = parse.UnmatchedTokens.SelectMany(t => parse.CommandResult.Command.Subcommands.Select(c => (c.Name, Distance: Distance(t, c.Name))))
            .Where(g => g.Distance <= 2).OrderBy(g => g.Distance).Select(g => $"; did you mean `{g.Name}`?").FirstOrDefault() ?? "";
        return $"{string.Join("; ", unknown.Count > 0 ? unknown : errors)}{guess} (see `{string.Join(' ', path)} --help`).";
    }

    /// <summary>Levenshtein distance (insertions, deletions, substitutions): how far a typo is from a subcommand.</summary>
    private static int Distance(string a, string b)
    {
        var row = Enumerable.Range(0, b.Length + 1).ToArray();
        for (var i = 1; i <= a.Length; i++)
        {
            var diagonal = row[0];
            row[0] = i;
            for (var j = 1; j <= b.Length; j++)
            {
                var above = row[j];
                row[j] = Math.Min(Math.Min(above + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }
}
