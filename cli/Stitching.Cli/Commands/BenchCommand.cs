using System.CommandLine;
using Stitching.Core.Compute;
using TorchSharp;

namespace Stitching.Cli.Commands;

/// <summary>stitch bench matmul: this machine's float32 matmul rate through TorchSharp (the roofline the other benchmarks compare against).</summary>
public static class BenchCommand
{
    public static Command Create()
    {
        var size = new Option<int>("--size") { Description = "Square matrix size n (n x n times n x n).", DefaultValueFactory = _ => 2048 };
        var repeat = new Option<int>("--repeat") { Description = "Timed repetitions (after one warm-up).", DefaultValueFactory = _ => 10 };
        var device = new Option<string>("--device") { Description = "Torch device.", DefaultValueFactory = _ => "cpu" };
        var matmul = new Command("matmul", "Measure float32 matmul GFLOP/s through TorchSharp.") { size, repeat, device };
        matmul.SetAction(async (parse, ct) =>
        {
            var n = parse.GetValue(size);
            var reps = Math.Max(1, parse.GetValue(repeat));
            using var worker = new TorchWorker(parse.GetValue(device)!);
            var seconds = await worker.RunAsync(() => MatmulRate.BestSeconds(n, reps, worker.Device), ct);
            var gflops = MatmulRate.Gflops(n, seconds);
            CliOutput.Print(parse, new { n, device = parse.GetValue(device), gflops, best_seconds = seconds, repeat = reps, torch = TorchInfo.Version, threads = TorchInfo.Threads },
                () => Console.WriteLine($"matmul {n}x{n} float32 on {parse.GetValue(device)}: {gflops:F1} GFLOP/s (best of {reps}, {seconds * 1e3:F1} ms, torch {TorchInfo.Version}, {TorchInfo.Threads} threads)"));
            return 0;
        });
        return new Command("bench", "Micro-benchmarks of this machine.") { matmul, Generate() };
    }

    /// <summary>
    /// stitch bench generate: greedy generation with the KV cache against the uncached baseline (every step
    /// re-runs the prefix), timed in the same run, best of --repeat each; the outputs must agree.
    /// </summary>
    private static Command Generate()
    {
        var model = new Option<string>("--model") { Description = "A model folder (config.json, weights, e.g. {store}/models/brown-l).", Required = true };
        var prompt = new Option<int>("--prompt-tokens") { Description = "Prompt length.", DefaultValueFactory = _ => 16 };
        var fresh = new Option<int>("--new-tokens") { Description = "Tokens generated.", DefaultValueFactory = _ => 96 };
        var repeat = new Option<int>("--repeat") { Description = "Timed repetitions of each (after one warm-up).", DefaultValueFactory = _ => 3 };
        var command = new Command("generate", "Greedy generation tokens/s with and without the KV cache, and their ratio.") { model, prompt, fresh, repeat };
        command.SetAction(async (parse, ct) =>
        {
            using var worker = new TorchWorker("cpu");
            var r = await worker.RunAsync(() =>
            {
                using var lm = Stitching.Models.Families.ModelFamilies.Load(parse.GetValue(model)!);
                var rng = new Random(1);
                var ids = Enumerable.Range(0, parse.GetValue(prompt)).Select(_ => rng.Next(lm.VocabSize)).ToArray();
                var none = new Dictionary<Stitching.Models.HookPoint, IReadOnlyList<Stitching.Models.Runtime.IIntervention>>();
                (double Seconds, List<int> Ids) Time(bool cache)
                {
                    var options = new Stitching.Models.Runtime.SamplingOptions(parse.GetValue(fresh), KvCache: cache);
                    var output = Stitching.Models.Runtime.Generation.Generate(lm, ids, options, _ => none).NewIds; // warm-up
                    var best = double.MaxValue;
                    for (var r = 0; r < Math.Max(1, parse.GetValue(repeat)); r++)
                    {
                        var clock = System.Diagnostics.Stopwatch.StartNew();
                        output = Stitching.Models.Runtime.Generation.Generate(lm, ids, options, _ => none).NewIds;
                        best = Math.Min(best, clock.Elapsed.TotalSeconds);
                    }
                    return (best, output);
                }
                var uncached = Time(false);
                var cached = Time(true);
                var n = parse.GetValue(fresh);
                return new GenerateRate(n, ids.Length, lm.Family, lm.Layers, lm.Width, n / uncached.Seconds, n / cached.Seconds, uncached.Seconds / cached.Seconds, uncached.Ids.SequenceEqual(cached.Ids));
            }, ct);
            CliOutput.Print(parse, r, () => Console.WriteLine(
                $"generate {r.NewTokens} tokens after {r.PromptTokens} ({r.Family}, {r.Layers} layers, d={r.Width}): uncached {r.UncachedTokensPerSecond:F1} tok/s, " +
                $"KV cache {r.CachedTokensPerSecond:F1} tok/s, ratio {r.Ratio:F2}x; outputs {(r.Identical ? "identical" : "DIFFER")}"));
            return 0;
        });
        return command;
    }

    private sealed record GenerateRate(int NewTokens, int PromptTokens, string Family, int Layers, int Width,
        double UncachedTokensPerSecond, double CachedTokensPerSecond, double Ratio, bool Identical);
}
