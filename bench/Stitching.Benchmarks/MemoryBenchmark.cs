using System.Diagnostics;
using System.Text.Json;
using Stitching.Core.Compute;

namespace Stitching.Benchmarks;

/// <summary>
/// Peak resident memory is flat in corpus size: a fresh process per size runs the real pipeline through the
/// embedded server (extract N tokens of brown:train at three residual streams of brown-ci-l, then train a TopK SAE
/// on one stream over all of them) and reports its peak (VmHWM) after extraction and at the end. At 4N the
/// activations alone are 4 x larger (N = 262,144 tokens: 201 MB of float32 activations; 4N: 805 MB), so a
/// pipeline that held them would show it. Figures: the 4N peak against the N peak.
/// </summary>
public static class MemoryBenchmark
{
    public sealed record Peaks(long Tokens, long ExtractPeakBytes, long PeakBytes);

    public static void Run(long tokens, List<Figure> figures)
    {
        var small = RunChild(tokens);
        var large = RunChild(4 * tokens);
        if (small is null || large is null) return;
        foreach (var p in new[] { small, large })
            Console.WriteLine($"  {p.Tokens,8} tokens: peak {p.ExtractPeakBytes / 1e6,6:F0} MB after extraction, {p.PeakBytes / 1e6,6:F0} MB after SAE training");
        figures.Add(new Figure("memory-extract", large.ExtractPeakBytes / 1e6, small.ExtractPeakBytes / 1e6, "MB", "<= 1.15", $"peak RSS extracting {large.Tokens} vs {small.Tokens} tokens"));
        figures.Add(new Figure("memory-pipeline", large.PeakBytes / 1e6, small.PeakBytes / 1e6, "MB", "<= 1.15", $"peak RSS extracting and training on {large.Tokens} vs {small.Tokens} tokens"));
    }

    /// <summary>This benchmark run again as a child process (`memory-probe TOKENS`), so each size has its own peak.</summary>
    private static Peaks? RunChild(long tokens)
    {
        var self = typeof(MemoryBenchmark).Assembly.Location;
        var host = Environment.ProcessPath!;
        var psi = new ProcessStartInfo(host) { RedirectStandardOutput = true, RedirectStandardError = true };
        if (Path.GetFileNameWithoutExtension(host) == "dotnet") psi.ArgumentList.Add(self);
        psi.ArgumentList.Add("memory-probe");
        psi.ArgumentList.Add($"{tokens}");
        using var p = Process.Start(psi)!;
        var stderr = p.StandardError.ReadToEndAsync();
        var last = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "";
        p.WaitForExit();
        if (p.ExitCode != 0 || !last.StartsWith('{')) { Console.WriteLine($"  memory probe at {tokens} tokens failed ({p.ExitCode}): {last} {stderr.Result.Trim()}"); return null; }
        return JsonSerializer.Deserialize<Peaks>(last);
    }

    /// <summary>The child: one pipeline run at <paramref name="tokens"/>, printing its <see cref="Peaks"/> as JSON.</summary>
    public static async Task<int> ProbeAsync(long tokens)
    {
        var models = Pipeline.EnsureFamily();
        await using var pipeline = await Pipeline.StartAsync(models);
        var extract = await pipeline.ExtractAsync(tokens);
        var afterExtract = NativeMemory.PeakResidentBytes();
        await pipeline.TrainAsync(extract.ActivationSets[0], Pipeline.Hooks[^1], extract.Rows);
        Console.WriteLine(JsonSerializer.Serialize(new Peaks(extract.Tokens, afterExtract, NativeMemory.PeakResidentBytes())));
        return 0;
    }
}
