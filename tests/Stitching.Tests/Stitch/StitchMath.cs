using Stitching.Stitch.Fitting;
using static TorchSharp.torch;

namespace Stitching.Tests.Stitch;

/// <summary>Test helpers: planted affine pairs and the lstsq fit of a pair, in memory or in chunks.</summary>
public static class StitchMath
{
    /// <summary>A [n, dA] with a non-zero mean, B = A M + c + noise * N(0, 1).</summary>
    public static (Tensor A, Tensor B, Tensor M, Tensor C) Planted(long n, long dA, long dB, double noise, ulong seed = 1)
    {
        var g = new Generator(seed);
        var a = randn(n, dA, generator: g, dtype: ScalarType.Float64) * 2 + 3;
        var m = randn(dA, dB, generator: g, dtype: ScalarType.Float64) / Math.Sqrt(dA);
        var c = randn(dB, generator: g, dtype: ScalarType.Float64);
        var b = a.matmul(m) + c + noise * randn(n, dB, generator: g, dtype: ScalarType.Float64);
        return (a, b, m, c);
    }

    /// <summary>lstsq from statistics accumulated over <paramref name="chunks"/> equal row chunks.</summary>
    public static (LeastSquares.Solution Up, LeastSquares.Solution Down) Fit(Tensor a, Tensor b, int chunks = 1, double ridge = 0)
    {
        using var stats = new SufficientStatistics();
        foreach (var (x, y) in a.chunk(chunks).Zip(b.chunk(chunks))) stats.Add(x, y);
        return (LeastSquares.Solve(stats.Up(), ridge), LeastSquares.Solve(stats.Down(), ridge));
    }

    public static double RelativeError(Tensor actual, Tensor expected) =>
        ((actual.to(ScalarType.Float64) - expected.to(ScalarType.Float64)).norm() / expected.to(ScalarType.Float64).norm()).item<double>();

    /// <summary>Writes a float64 tensor as raw bytes for numpy.fromfile.</summary>
    public static void WriteRaw(Tensor t, string path) => File.WriteAllBytes(path, t.to(ScalarType.Float64).contiguous().bytes.ToArray());
}
