using System.Diagnostics;
using System.Text.Json;
using Stitching.Core.Compute;
using Stitching.Sae.Weights;
using Stitching.Sae.Training;
using TorchSharp;

namespace Stitching.Benchmarks;

/// <summary>
/// TopK SAE training tokens/s of SaeTrainer (d, latents, k, batch) against the machine's matmul peak and
/// baseline_sae.py (the same step in PyTorch eager) in the same run; see ../README.md.
/// </summary>
public static class SaeTrainingBenchmark
{
    public static int Run(int d, int latents, int k, int batch, int threads, int warmup, int repeat)
    {
        torch.set_num_threads(threads);
        var peak = MatmulRate.Gflops(2048, MatmulRate.BestSeconds(2048, 5, torch.CPU));
        var mean = new float[d];
        using var sae = SaeInitializer.Create(new SaeConfig("topk", d, latents, k), mean, 1);
        using var trainer = new SaeTrainer(sae, new TrainerOptions());
        var x = torch.randn(batch, d);
        var timing = Timing.Measure(() => { using var scope = torch.NewDisposeScope(); trainer.TrainStep(x, 1e-4); }, warmup, repeat);
        var flops = Flops.SaeTrainingStep(batch, d, latents, auxK: false);
        Console.WriteLine($"TopK SAE training step: d={d}, latents={latents}, k={k}, batch={batch} tokens, {threads} threads; {flops / 1e9:F1} GFLOP per step (10 n d M)");
        Console.WriteLine($"matmul peak (TorchSharp 2048^3): {peak:F1} GFLOP/s");
        var ours = batch / timing.Best;
        Console.WriteLine($"ours:    {ours,8:F0} tokens/s best ({batch / timing.Median:F0} median), {flops / timing.Best / 1e9:F1} GFLOP/s = {flops / timing.Best / 1e9 / peak * 100:F0}% of peak");
        var psi = new ProcessStartInfo(PythonBaseline.Python) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "baseline_sae.py"), $"{d}", $"{latents}", $"{k}", $"{batch}", $"{threads}", $"{warmup}", $"{repeat}" }) psi.ArgumentList.Add(a);
        if (!File.Exists(PythonBaseline.Python)) { Console.WriteLine($"PyTorch baseline skipped: install with {PythonBaseline.InstallHint}"); return 0; }
        using var p = Process.Start(psi)!;
        var line = p.StandardOutput.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries).LastOrDefault() ?? "{}";
        p.WaitForExit();
        using var json = JsonDocument.Parse(line);
        if (!json.RootElement.TryGetProperty("tokens_per_s_best", out var tps)) { Console.WriteLine($"PyTorch baseline failed: {line} {p.StandardError.ReadToEnd()}"); return 1; }
        var theirs = tps.GetDouble();
        var best = json.RootElement.GetProperty("best_s").GetDouble();
        Console.WriteLine($"PyTorch: {theirs,8:F0} tokens/s best ({batch / json.RootElement.GetProperty("median_s").GetDouble():F0} median), {flops / best / 1e9:F1} GFLOP/s (torch {json.RootElement.GetProperty("torch_version").GetString()}, its matmul {json.RootElement.GetProperty("matmul_gflops").GetDouble():F1} GFLOP/s)");
        Console.WriteLine($"ours / PyTorch: {ours / theirs:F2}x");
        return 0;
    }
}
