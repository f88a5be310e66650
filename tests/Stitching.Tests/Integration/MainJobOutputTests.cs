using System.Diagnostics;
using System.Text.RegularExpressions;
using Stitching.Tests.Fixtures;
using Xunit.Abstractions;

namespace Stitching.Tests.Integration;

/// <summary>
/// The README's main command, as a user sees it: `stitch paper` on a fresh store (the ci family, so it fits in a
/// test) prints the report and nothing else on stdout; progress goes to stderr; no framework log line anywhere.
/// </summary>
[Trait("Category", "Integration")]
public partial class MainJobOutputTests(ITestOutputHelper output)
{
    /// <summary>A Microsoft.Extensions.Logging console line ("warn: Category.Name[12]") or a bare category with an event id.</summary>
    [GeneratedRegex(@"^\s*(trce|dbug|info|warn|fail|crit):\s|\b(Microsoft|Stitching|Grpc|System|StackExchange)(\.\w+)+\[\d+\]")]
    private static partial Regex LogLine();

    [Fact]
    public async Task Stitch_paper_prints_the_report_on_stdout_progress_on_stderr_and_no_log_lines()
    {
        using var dir = new TempDir("paper-output");
        var store = Path.Combine(dir.Path, "store");
        var md = Path.Combine(dir.Path, "paper.md");
        // The ci family with a smaller budget: what is checked is where each line goes, not the numbers.
        var (code, stdout, stderr) = await RunAsync(["paper", "--family", "ci", "--tokens", "16384", "--sae-epochs", "1", "--sae-widths", "4", "--adam-steps", "0", "--store", store, "--out", md]);
        output.WriteLine(string.Join("\n", stderr.TakeLast(20)));
        Assert.True(code == 0, $"stitch paper failed ({code}): {string.Join("\n", stderr.TakeLast(20))}");

        var report = File.ReadAllLines(md).ToHashSet();
        var files = new[] { "report: ", "json:   ", "html:   ", "figures: " };
        var stray = stdout.Where(l => l.Length > 0 && !report.Contains(l) && !files.Any(p => l.StartsWith(p, StringComparison.Ordinal))).ToList();
        Assert.True(stray.Count == 0, "stdout holds lines that are neither the report nor the files it wrote:\n" + string.Join("\n", stray.Take(10)));
        Assert.Contains(stdout, l => l.StartsWith("# ", StringComparison.Ordinal));       // the report itself, not just file names
        Assert.True(stdout.Count(l => report.Contains(l)) >= report.Count(l => l.Length > 0) * 0.9);
        Assert.DoesNotContain(stdout, l => LogLine().IsMatch(l));
        Assert.DoesNotContain(stderr, l => LogLine().IsMatch(l));
        Assert.Contains(stderr, l => l.Contains("ETA", StringComparison.OrdinalIgnoreCase) || l.Contains("eta ", StringComparison.OrdinalIgnoreCase));
    }

    private static async Task<(int Code, List<string> Stdout, List<string> Stderr)> RunAsync(string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { StitchCli.Dll() }.Concat(args)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(15));
        await p.WaitForExitAsync(timeout.Token);
        static List<string> Lines(string s) => s.ReplaceLineEndings("\n").Split('\n').ToList();
        return (p.ExitCode, Lines(await stdout), Lines(await stderr));
    }
}
