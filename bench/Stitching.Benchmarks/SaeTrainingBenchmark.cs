using Stitching.Core.Compute;
using Stitching.Sae.Weights;
using Stitching.Sae.Training;
using TorchSharp;

namespace Stitching.Benchmarks;

/// <summary>
/// TopK SAE training tokens/s: SaeTrainer's default sparse step, its dense reference (TrainerOptions.Dense) and
/// baseline_sae.py (the dense step in PyTorch eager) in the same run, same shapes, threads, warm-up and
/// repetitions; see ../README.md.
/// </summary>
public static class SaeTrainingBenchmark
{
    public static void Run(int d, int latents, int k, int batch, int threads, int warmup, int repeat, double bestMatmul, List<Figure> figures)
    {
        torch.set_num_threads(threads);
        var x = torch.randn(batch, d);
        double Measure(bool dense)
        {
            using var sae = SaeInitializer.Create(new SaeConfig("topk", d, latents, k), new float[d], 1);
            using var trainer = new SaeTrainer(sae, new TrainerOptions(Dense: dense));
            return Timing.Measure(() => { using var scope = torch.NewDisposeScope(); trainer.TrainStep(x, 1e-4); }, warmup, repeat).Best;
        }
        var nominal = Flops.SaeTrainingStep(batch, d, latents, auxK: false);
        // What the sparse step performs: the encoder's 2 n d M and about 8 nnz d for the gathers and scatters (docs/flops.md).
        var performed = Flops.Matmul(batch, d, latents) + 8.0 * k * batch * d;
        Console.WriteLine($"TopK SAE training step: d={d}, latents={latents}, k={k}, batch={batch} tokens, {threads} threads; dense {nominal / 1e9:F1} GFLOP (10 n d M), sparse performs {performed / 1e9:F1}");
        var sparse = Measure(dense: false);
        var dense = Measure(dense: true);
        Console.WriteLine($"  ours, sparse (default): {batch / sparse,7:F0} tokens/s, {performed / sparse / 1e9:F1} GFLOP/s performed = {performed / sparse / 1e9 / bestMatmul:P0} of the best matmul ({bestMatmul:F1})");
        Console.WriteLine($"  ours, dense reference:  {batch / dense,7:F0} tokens/s, {nominal / dense / 1e9:F1} GFLOP/s");
        figures.Add(new Figure("sae-train-roofline", performed / sparse / 1e9, bestMatmul, "GFLOP/s", ">= 0.60", "the sparse step's performed FLOPs against the best matmul"));
        var json = PythonBaseline.RunJson("baseline_sae.py", [$"{d}", $"{latents}", $"{k}", $"{batch}", $"{threads}", $"{warmup}", $"{repeat}"], out var problem);
        if (json is not { } j) { Console.WriteLine($"  PyTorch baseline not run: {problem}"); return; }
        var theirs = j.GetProperty("tokens_per_s_best").GetDouble();
        Console.WriteLine($"  PyTorch {j.GetProperty("torch_version").GetString()} eager, dense: {theirs,7:F0} tokens/s, {nominal * theirs / batch / 1e9:F1} GFLOP/s");
        figures.Add(new Figure("sae-train", batch / sparse, theirs, "tokens/s", ">= 2.00", "ours sparse vs PyTorch dense eager"));
        figures.Add(new Figure("sae-train-dense", batch / dense, theirs, "tokens/s", "", "our dense reference vs PyTorch dense eager"));
    }
}
