using System.Globalization;
using Stitching.Tests.Fixtures;
using static TorchSharp.torch;

namespace Stitching.Tests.Stitch;

/// <summary>The exact stitch fit (paper section 2, our lstsq) against numpy and planted maps.</summary>
[Trait("Category", "Unit")]
public class LeastSquaresTests
{
    [Fact]
    public void Lstsq_matches_numpy_lstsq_with_intercept_on_random_data()
    {
        var g = new Generator(7);
        var a = randn(500, 12, generator: g, dtype: ScalarType.Float64) + 1;
        var b = randn(500, 9, generator: g, dtype: ScalarType.Float64) * 3 - 2 + a[.., ..9] * 0.5;
        var (up, down) = StitchMath.Fit(a, b);
        using var dir = new TempDir("lstsq");
        StitchMath.WriteRaw(a, Path.Combine(dir.Path, "a.bin"));
        StitchMath.WriteRaw(b, Path.Combine(dir.Path, "b.bin"));
        var script = """
            import numpy as np, sys
            a = np.fromfile(sys.argv[1] + '/a.bin').reshape(500, 12)
            b = np.fromfile(sys.argv[1] + '/b.bin').reshape(500, 9)
            for x, y in ((a, b), (b, a)):
                w = np.linalg.lstsq(np.c_[x, np.ones(len(x))], y, rcond=None)[0]
                print(' '.join(repr(v) for v in w.ravel()))
            """;
        var lines = Python.Run(script, dir.Path).Trim().Split('\n');
        foreach (var (solution, line, dx, dy) in new[] { (up, lines[0], 12, 9), (down, lines[1], 9, 12) })
        {
            var w = tensor(line.Split(' ').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).reshape(dx + 1, dy);
            Assert.True(StitchMath.RelativeError(solution.P, w[..dx]) < 1e-6, $"P differs from numpy by {StitchMath.RelativeError(solution.P, w[..dx]):E2}");
            Assert.True(StitchMath.RelativeError(solution.B, w[dx]) < 1e-6, $"b differs from numpy by {StitchMath.RelativeError(solution.B, w[dx]):E2}");
            Assert.Equal("cholesky", solution.Solver);
        }
    }

    [Fact]
    public void Lstsq_recovers_a_planted_affine_map_exactly_without_noise_both_ways()
    {
        var (a, b, m, c) = StitchMath.Planted(400, 8, 16, noise: 0);
        var (up, down) = StitchMath.Fit(a, b);
        Assert.True(StitchMath.RelativeError(up.P, m) < 1e-9);
        Assert.True(StitchMath.RelativeError(up.B, c) < 1e-9);
        // B spans only an 8-dim affine subspace of R^16: C_BB is singular, so the eigen fallback gives
        // the minimum-norm solution, which still maps B back to A exactly
        Assert.Equal("eigh", down.Solver);
        Assert.True(StitchMath.RelativeError(b.matmul(down.P) + down.B, a) < 1e-8);
    }

    [Fact]
    public void Lstsq_recovers_a_planted_map_under_noise_and_ridge_shrinks_it()
    {
        var (a, b, m, c) = StitchMath.Planted(20000, 8, 16, noise: 0.1);
        var (up, _) = StitchMath.Fit(a, b);
        Assert.True(StitchMath.RelativeError(up.P, m) < 0.01, $"{StitchMath.RelativeError(up.P, m)}");
        Assert.True(StitchMath.RelativeError(up.B, c) < 0.02);
        var (ridged, _) = StitchMath.Fit(a, b, ridge: 10);
        Assert.True(ridged.P.norm().item<double>() < up.P.norm().item<double>() * 0.5);
    }

    [Fact]
    public void Streamed_statistics_over_many_chunks_equal_one_in_memory_pass()
    {
        var (a, b, _, _) = StitchMath.Planted(3000, 10, 6, noise: 0.3);
        var (one, oneDown) = StitchMath.Fit(a, b, chunks: 1);
        var (many, manyDown) = StitchMath.Fit(a, b, chunks: 37);
        Assert.True(StitchMath.RelativeError(many.P, one.P) < 1e-10);
        Assert.True(StitchMath.RelativeError(many.B, one.B) < 1e-10);
        Assert.True(StitchMath.RelativeError(manyDown.P, oneDown.P) < 1e-10);
    }
}
