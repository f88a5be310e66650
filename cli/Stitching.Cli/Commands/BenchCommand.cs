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
            Console.WriteLine($"matmul {n}x{n} float32 on {parse.GetValue(device)}: {gflops:F1} GFLOP/s (best of {reps}, {seconds * 1e3:F1} ms, torch {TorchInfo.Version}, {TorchInfo.Threads} threads)");
            return 0;
        });
        return new Command("bench", "Micro-benchmarks of this machine.") { matmul };
    }
}
