using System.Diagnostics;
using System.Text.Json;

namespace Stitching.Benchmarks;

/// <summary>What baseline_extract.py prints (snake_case JSON).</summary>
public sealed record BaselineResult(
    string TorchVersion, int Threads, string Blas, string[] BlasLibraries, double MatmulGflops,
    double BestS, double MedianS, double TokensPerSBest, double TokensPerSMedian, double MaxAbsError, double MaxRelError);

/// <summary>Runs the PyTorch eager baselines (baseline_*.py) under Debian's python3-torch.</summary>
public static class PythonBaseline
{
    public const string Python = "/usr/bin/python3";
    public const string InstallHint = "apt-get install -y python3-torch libopenblas0-pthread";

    /// <summary>
    /// Runs <paramref name="script"/> (beside this assembly) with <paramref name="args"/> and parses the JSON of
    /// its last stdout line; null with <paramref name="problem"/> saying why when there is no result.
    /// </summary>
    public static JsonElement? RunJson(string script, IEnumerable<string> args, out string? problem)
    {
        var path = Path.Combine(AppContext.BaseDirectory, script);
        if (!File.Exists(Python)) { problem = $"{Python} is missing; install the baseline with: {InstallHint}"; return null; }
        var psi = new ProcessStartInfo(Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(path);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        var last = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).LastOrDefault();
        if (last is null || !last.StartsWith('{'))
        {
            problem = $"{script} exited {process.ExitCode} without a result ({stderr.Result.Trim()}); it needs Debian's python3-torch and numpy: {InstallHint}";
            return null;
        }
        var root = JsonDocument.Parse(last).RootElement.Clone();
        if (root.TryGetProperty("error", out var error))
        {
            problem = error.GetString() == "no_torch" ? $"{Python} cannot import torch; install the baseline with: {InstallHint}" : $"{script}: {last}";
            return null;
        }
        problem = null;
        return root;
    }

    /// <summary>The extraction baseline's result, or null with <paramref name="problem"/> saying why there is none.</summary>
    public static BaselineResult? Run(string checkpointDir, string inputsPath, BenchOptions o, out string? problem) =>
        RunJson("baseline_extract.py",
            [
                checkpointDir, inputsPath, "--layers-read", $"{o.LayersRead}", "--threads", $"{o.Threads}",
                "--warmup", $"{o.Warmup}", "--repeat", $"{o.Repeat}", "--matmul-size", $"{o.MatmulSize}",
            ], out problem)?.Deserialize<BaselineResult>(new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower });
}
