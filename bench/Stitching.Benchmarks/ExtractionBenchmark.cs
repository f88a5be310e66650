using Stitching.Core.Tensors;
using System.Diagnostics;
using Stitching.Core.Compute;
using Stitching.Core.Safetensors;
using TorchSharp;
using static TorchSharp.torch;

namespace Stitching.Benchmarks;

/// <summary>
/// One benchmark run: matmul peak, our extraction throughput, the PyTorch baseline of the same computation
/// (same checkpoint file, ids and thread count) and the comparison, printed as plain text.
/// </summary>
public static class ExtractionBenchmark
{
    public static int Run(BenchOptions o, double bestMatmul, List<Figure> figures)
    {
        var shape = new Gpt2Shape();
        if (o.LayersRead < 1 || o.LayersRead >= shape.Layers || o.Context < 1 || o.Context > shape.Positions || o.Batch < 1)
        {
            Console.Error.WriteLine($"--layers-read must be 1..{shape.Layers - 1}, --context 1..{shape.Positions}, --batch >= 1.");
            return 2;
        }
        torch.set_num_threads(o.Threads);
        Console.WriteLine($"machine: {Environment.ProcessorCount} logical cores; torch threads {TorchInfo.Threads} (TorchSharp, libtorch {TorchInfo.Version})");

        var peak = bestMatmul;
        Console.WriteLine($"1. best matmul rate measured in this run: {peak:F1} GFLOP/s");

        var dir = Path.Combine(Path.GetTempPath(), $"stitching-bench-{Guid.NewGuid():N}");
        try
        {
            var sw = Stopwatch.StartNew();
            SyntheticGpt2.Write(dir, shape, o.Seed);
            Console.WriteLine($"   wrote GPT-2-small-shaped checkpoint ({shape.Layers} layers, d={shape.Width}, {shape.Heads} heads, vocab {shape.Vocab}) in {sw.Elapsed.TotalSeconds:F1} s");
            using var scope = NewDisposeScope();
            torch.random.manual_seed(o.Seed + 1);
            var ids = randint(shape.Vocab, [o.Batch, o.Context], dtype: ScalarType.Int64);

            var ours = OurExtraction.Run(dir, ids, o);
            var tokens = (double)o.Batch * o.Context;
            var flops = o.LayersRead * Flops.TransformerBlockForward(o.Batch, o.Context, shape.Width, shape.MlpWidth);
            var gflops = flops / ours.Timing.Best / 1e9;
            Console.WriteLine($"2. ours: blocks.{o.LayersRead}.hook_resid_pre ({o.LayersRead} blocks), batch {o.Batch} x context {o.Context}, float32, {ours.ParameterCount / 1e6:F1}M parameters loaded");
            Console.WriteLine($"   {tokens / ours.Timing.Best:F0} tokens/s best, {tokens / ours.Timing.Median:F0} median of {ours.Timing.Repeat} ({ours.Timing.Best * 1e3:F1} / {ours.Timing.Median * 1e3:F1} ms per forward)");
            Console.WriteLine($"   {flops / 1e9:F2} GFLOP per forward (analytic) -> {gflops:F1} GFLOP/s, {100 * gflops / peak:F0}% of the matmul peak");
            figures.Add(new Figure("extract-roofline", gflops, peak, "GFLOP/s", ">= 0.70", "our extraction's analytic FLOP rate against the best matmul"));

            // bfloat16 on request (ModelSpec.dtype): the same forward with bf16 weights and activations.
            var bf16 = OurExtraction.Run(dir, ids, o, ScalarType.BFloat16);
            using (var f32 = TorchTensors.ToTorch(ours.Captured))
            using (var b16 = TorchTensors.ToTorch(bf16.Captured))
            {
                var relative = (b16 - f32).abs().max().item<float>() / f32.abs().max().item<float>();
                Console.WriteLine($"   bfloat16: {tokens / bf16.Timing.Best:F0} tokens/s best ({tokens / bf16.Timing.Median:F0} median); max |bf16 - f32| / max |f32| = {relative:0.0e+00}");
            }
            figures.Add(new Figure("extract-bf16", tokens / bf16.Timing.Best, tokens / ours.Timing.Best, "tokens/s", "(reference)", "ours in bfloat16 vs ours in float32"));
            if (o.SkipPython) return 0;
            var inputs = Path.Combine(dir, "inputs.safetensors");
            SafetensorsWriter.Write(inputs, [TorchTensors.ToHost(ids, "ids"), ours.Captured]);
            var baseline = PythonBaseline.Run(dir, inputs, o, out var problem);
            if (baseline is null)
            {
                Console.WriteLine($"3. PyTorch baseline: not run: {problem}");
                return 0;
            }
            PrintBaseline(baseline, tokens, flops, tokens / ours.Timing.Best, tokens / ours.Timing.Median);
            figures.Add(new Figure("extract", tokens / ours.Timing.Best, baseline.TokensPerSBest, "tokens/s", ">= 1.30", "ours vs PyTorch eager, best of the repetitions"));
            return 0;
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }

    private static void PrintBaseline(BaselineResult b, double tokens, double flops, double oursBest, double oursMedian)
    {
        Console.WriteLine($"3. PyTorch {b.TorchVersion} eager ({PythonBaseline.Python}), {b.Threads} threads, BLAS: {b.Blas} ({string.Join(", ", b.BlasLibraries.DefaultIfEmpty("none mapped"))})");
        if (b.Blas != "OpenBLAS")
            Console.WriteLine($"   WARNING: torch is not using OpenBLAS, so the baseline is far below this machine's speed; install it with: {PythonBaseline.InstallHint}");
        Console.WriteLine($"   its matmul peak {b.MatmulGflops:F1} GFLOP/s; {b.TokensPerSBest:F0} tokens/s best, {b.TokensPerSMedian:F0} median ({b.BestS * 1e3:F1} / {b.MedianS * 1e3:F1} ms), {flops / b.BestS / 1e9:F1} GFLOP/s ({100 * flops / b.BestS / 1e9 / b.MatmulGflops:F0}% of its matmul peak)");
        Console.WriteLine($"   check: max |ours - torch| = {b.MaxAbsError:0.00e+00}, relative to max |torch| = {b.MaxRelError:0.00e+00}");
        Console.WriteLine($"4. ours / PyTorch: {oursBest / b.TokensPerSBest:F2}x (best), {oursMedian / b.TokensPerSMedian:F2}x (median)");
    }
}
