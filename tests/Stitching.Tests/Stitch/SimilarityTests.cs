using System.Globalization;
using Stitching.Core.Metrics;
using Stitching.Tests.Fixtures;
using static TorchSharp.torch;

namespace Stitching.Tests.Stitch;

/// <summary>SVCCA and linear CKA (docs/metrics.md) against their defining properties and numpy.</summary>
[Trait("Category", "Unit")]
public class SimilarityTests
{
    [Fact]
    public void Svcca_and_cka_of_a_set_with_itself_or_an_invertible_affine_image_are_one()
    {
        var g = new Generator(5);
        var x = randn(600, 10, generator: g) * tensor(new float[] { 5, 4, 3, 3, 2, 2, 1, 1, 1, 1 }) + 2;
        Assert.Equal(1.0, RepresentationSimilarity.Svcca(x, x), 6);
        Assert.Equal(1.0, RepresentationSimilarity.LinearCka(x, x), 6);
        var map = randn(10, 10, generator: g) + 3 * eye(10);
        Assert.Equal(1.0, RepresentationSimilarity.Svcca(x, x.matmul(map) + 7, varianceKept: 1.0), 5);
        var q = linalg.qr(randn(10, 10, generator: g)).Q;
        Assert.Equal(1.0, RepresentationSimilarity.LinearCka(x, 3 * x.matmul(q) - 1), 5); // CKA: orthogonal and isotropic invariance
        Assert.True(RepresentationSimilarity.Svcca(x, randn(600, 10, generator: g)) < 0.3);
    }

    [Fact]
    public void Linear_cka_matches_numpy()
    {
        var g = new Generator(9);
        var x = randn(300, 7, generator: g, dtype: ScalarType.Float64);
        var y = x[.., ..4].matmul(randn(4, 5, generator: g, dtype: ScalarType.Float64)) + randn(300, 5, generator: g, dtype: ScalarType.Float64);
        using var dir = new TempDir("cka");
        StitchMath.WriteRaw(x, Path.Combine(dir.Path, "x.bin"));
        StitchMath.WriteRaw(y, Path.Combine(dir.Path, "y.bin"));
        var expected = double.Parse(Python.Run("""
            import numpy as np, sys
            x = np.fromfile(sys.argv[1] + '/x.bin').reshape(300, 7); x -= x.mean(0)
            y = np.fromfile(sys.argv[1] + '/y.bin').reshape(300, 5); y -= y.mean(0)
            print(repr(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y))))
            """, dir.Path).Trim(), CultureInfo.InvariantCulture);
        Assert.Equal(expected, RepresentationSimilarity.LinearCka(x, y), 10);
    }
}
