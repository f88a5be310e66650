using Stitching.Core.Compute;
using TorchSharp;

namespace Stitching.Benchmarks;

/// <summary>
/// The machine's float32 matmul rate: TorchSharp's libtorch against PyTorch 1.13 on Debian's OpenBLAS, the
/// same n x n product, thread count and repetitions, in one run. The larger of the two is the roofline the
/// extraction and SAE figures are held to.
/// </summary>
public static class MatmulBenchmark
{
    public sealed record Result(double Ours, double? Baseline, string BaselineWhat)
    {
        /// <summary>The best rate measured on this machine in this run.</summary>
        public double Best => Math.Max(Ours, Baseline ?? 0);
    }

    public static Result Run(int n, int threads, int repeat, List<Figure> figures)
    {
        torch.set_num_threads(threads);
        var ours = MatmulRate.Gflops(n, MatmulRate.BestSeconds(n, repeat, torch.CPU));
        Console.WriteLine($"matmul {n}^3 float32, {threads} threads, best of {repeat}: TorchSharp (libtorch {TorchInfo.Version}) {ours:F1} GFLOP/s");
        var json = PythonBaseline.RunJson("baseline_matmul.py", [$"{n}", $"{threads}", $"{repeat}"], out var problem);
        if (json is not { } j)
        {
            Console.WriteLine($"  PyTorch baseline not run: {problem}");
            return new Result(ours, null, "none");
        }
        var theirs = j.GetProperty("gflops").GetDouble();
        var blas = string.Join(", ", j.GetProperty("blas").EnumerateArray().Select(e => e.GetString()));
        var what = $"PyTorch {j.GetProperty("torch_version").GetString()} ({(blas.Length > 0 ? blas : "no BLAS mapped")})";
        Console.WriteLine($"  {what}: {theirs:F1} GFLOP/s");
        figures.Add(new Figure("matmul", ours, theirs, "GFLOP/s", "1.00 (libtorch as fast as OpenBLAS)"));
        return new Result(ours, theirs, what);
    }
}
