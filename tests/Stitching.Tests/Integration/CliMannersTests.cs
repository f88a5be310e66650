using System.Diagnostics;
using System.Text.Json;
using System.Text.RegularExpressions;
using Stitching.Core.Safetensors;
using Stitching.Tests.Fixtures;
using Xunit.Abstractions;

namespace Stitching.Tests.Integration;

/// <summary>
/// The CLI's manners, as a user (or a script) sees them: stdout holds only the result (one JSON document
/// under --json), the embedded server's logs appear only with --verbose and only on stderr, and an error is
/// one line on stderr with a non-zero exit code (2 for what the user typed). Each CLI run is its own process
/// with its own embedded server over a temp store; independent runs go in parallel to keep this quick.
/// </summary>
[Trait("Category", "Integration")]
public partial class CliMannersTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Every_listing_command_prints_one_json_document_and_no_log_lines()
    {
        using var dir = new TempDir("cli-manners");
        string[][] commands = [["health"], ["models", "list"], ["ops", "list"], ["zoo", "list"]];
        var runs = await Task.WhenAll(commands.Select((c, i) => Cli([.. c, "--json", "--store", Path.Combine(dir.Path, $"store-{i}")])));
        foreach (var (command, run) in commands.Zip(runs))
        {
            Assert.True(run.Code == 0, $"{string.Join(' ', command)} exited {run.Code}: {run.Stderr}");
            NoLogLines(run.Stdout);
            using var json = ParseOne(run.Stdout);
            Assert.Equal("", run.Stderr.Trim());
            switch (command[0])
            {
                case "health": Assert.Equal("SERVING", json.RootElement.GetProperty("status").GetString()); break;
                case "models": Assert.Equal(JsonValueKind.Array, json.RootElement.GetProperty("models").ValueKind); break;
                case "ops": Assert.Equal(JsonValueKind.Array, json.RootElement.GetProperty("operations").ValueKind); break;
                case "zoo": Assert.Contains(json.RootElement.EnumerateArray(), e => e.GetProperty("name").GetString() == "brown-ci-s"); break;
            }
        }
    }

    /// <summary>A long command (fit, an operation) keeps stdout for its result and draws its progress, with an ETA, on stderr; the operation then lists as JSON with its typed result.</summary>
    [Fact]
    public async Task A_followed_operation_prints_its_result_as_json_its_progress_on_stderr_and_lists_with_its_result()
    {
        using var dir = new TempDir("cli-manners-op");
        var store = Path.Combine(dir.Path, "store");
        var rng = new Random(5);
        var file = Path.Combine(dir.Path, "rows.safetensors");
        SafetensorsWriter.Write(file, [Stitching.Core.Tensors.HostTensor.FromFloats("activations", Enumerable.Range(0, 300 * 4).Select(_ => (float)rng.NextDouble()).ToArray(), 300, 4)]);

        var fit = await Cli(["fit", "--a", file, "--b", file, "--json", "--store", store]);
        Assert.True(fit.Code == 0, fit.Stderr);
        NoLogLines(fit.Stdout);
        using var result = ParseOne(fit.Stdout);
        Assert.Equal("lstsq", result.RootElement.GetProperty("method").GetString());
        Assert.Contains("ETA", fit.Stderr);

        var ops = await Cli(["ops", "list", "--json", "--store", store]);
        Assert.True(ops.Code == 0, ops.Stderr);
        using var listed = ParseOne(ops.Stdout);
        var op = Assert.Single(listed.RootElement.GetProperty("operations").EnumerateArray());
        Assert.Equal("OPERATION_STATE_SUCCEEDED", op.GetProperty("state").GetString());
        Assert.EndsWith("FitResult", op.GetProperty("result").GetProperty("@type").GetString());
    }

    [Fact]
    public async Task Errors_are_one_line_on_stderr_with_a_non_zero_exit_and_usage_errors_exit_2()
    {
        using var dir = new TempDir("cli-manners-errors");
        var store = Path.Combine(dir.Path, "store");
        (string[] Args, int Code, string Says)[] cases =
        [
            (["sae", "describe", "--sae", "no-such-sae", "--json"], 1, "NotFound"),                         // the server's error
            (["ops", "list", "--limit", "many"], 2, "--limit"),                                             // a value the parser refuses
            (["sae", "describe"], 2, "--sae"),                                                              // a required option left out
            (["healthh"], 2, "did you mean `health`"),                                                      // a typo of a command
            (["activations", "--model", "m", "--hooks", "h", "--out", Path.Combine(dir.Path, "a.safetensors")], 2, "--token-ids"), // the command's own check
            (["eval", "report", Path.Combine(dir.Path, "missing.json")], 2, "does not exist"),               // a check outside any server call
        ];
        var runs = await Task.WhenAll(cases.Select(c => Cli([.. c.Args, "--store", store])));
        foreach (var (c, run) in cases.Zip(runs))
        {
            var what = string.Join(' ', c.Args);
            Assert.True(run.Code == c.Code, $"{what}: exit {run.Code}, expected {c.Code}; stderr: {run.Stderr}");
            Assert.Equal("", run.Stdout.Trim());
            var line = Assert.Single(Lines(run.Stderr));
            Assert.StartsWith("error: ", line);
            Assert.Contains(c.Says, line);
        }
    }

    [Fact]
    public async Task Verbose_shows_the_embedded_servers_log_lines_on_stderr_and_never_on_stdout()
    {
        using var dir = new TempDir("cli-manners-verbose");
        var store = Path.Combine(dir.Path, "store");
        var runs = await Task.WhenAll(Cli(["health", "--verbose", "--store", store]), Cli(["health", "--json", "-v", "--store", store]));
        foreach (var run in runs)
        {
            Assert.True(run.Code == 0, run.Stderr);
            NoLogLines(run.Stdout);
            Assert.Matches(LogLine(), run.Stderr);
        }
        Assert.Contains("SERVING", runs[0].Stdout);
        using var _ = ParseOne(runs[1].Stdout);
    }

    /// <summary>A console logger's line ("info: Microsoft.Hosting.Lifetime[14]") or any category with an event id.</summary>
    [GeneratedRegex(@"(^|\n)\s*(trce|dbug|info|warn|fail|crit): |\b(Microsoft|Stitching|Grpc|System)\.[\w.]+\[\d+\]")]
    private static partial Regex LogLine();

    private static void NoLogLines(string stdout) => Assert.DoesNotMatch(LogLine(), stdout);

    /// <summary>Stdout as exactly one JSON document (it throws on anything before, after or between).</summary>
    private static JsonDocument ParseOne(string stdout) => JsonDocument.Parse(stdout);

    private static string[] Lines(string s) => s.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    private async Task<(int Code, string Stdout, string Stderr)> Cli(string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { StitchCli.Dll() }.Concat(args)) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(timeout.Token);
        output.WriteLine($"stitch {string.Join(' ', args)} -> {p.ExitCode}\n{await stdout}\n[stderr]\n{await stderr}");
        return (p.ExitCode, await stdout, await stderr);
    }
}
