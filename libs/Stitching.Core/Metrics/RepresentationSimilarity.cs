using static TorchSharp.torch;

namespace Stitching.Core.Metrics;

/// <summary>
/// Similarity of two representations of the same n tokens, X [n, d_x] and Y [n, d_y] (docs/metrics.md):
/// SVCCA (Raghu et al. 2017) and linear CKA (Kornblith et al. 2019). Both are computed in float64
/// on column-centred data and are invariant to orthogonal maps and isotropic scaling; SVCCA is
/// also invariant to any invertible linear map of the kept subspace.
/// </summary>
public static class RepresentationSimilarity
{
    /// <summary>
    /// Mean SVCCA correlation: centre, keep the top singular directions of each side that explain
    /// <paramref name="varianceKept"/> of its variance, orthonormalise (the left singular vectors), and
    /// average the canonical correlations, i.e. the singular values of U_x^T U_y, over min(k_x, k_y).
    /// </summary>
    public static double Svcca(Tensor x, Tensor y, double varianceKept = 0.99)
    {
        using var scope = NewDisposeScope();
        var ux = KeptBasis(Centre(x), varianceKept);
        var uy = KeptBasis(Centre(y), varianceKept);
        var correlations = linalg.svdvals(ux.t().matmul(uy));
        return correlations.clamp(0, 1).mean().item<double>();
    }

    /// <summary>Linear CKA: ||Y^T X||_F^2 / (||X^T X||_F ||Y^T Y||_F), X and Y column-centred.</summary>
    public static double LinearCka(Tensor x, Tensor y)
    {
        using var scope = NewDisposeScope();
        var xc = Centre(x);
        var yc = Centre(y);
        var cross = yc.t().matmul(xc).square().sum();
        var xx = xc.t().matmul(xc).square().sum().sqrt();
        var yy = yc.t().matmul(yc).square().sum().sqrt();
        return (cross / (xx * yy)).item<double>();
    }

    private static Tensor Centre(Tensor t)
    {
        var d = t.to(ScalarType.Float64);
        return d - d.mean([0], keepdim: true);
    }

    /// <summary>Orthonormal basis [n, k] of the top singular directions holding the given variance fraction.</summary>
    private static Tensor KeptBasis(Tensor centred, double varianceKept)
    {
        var (u, s, _) = linalg.svd(centred, fullMatrices: false);
        var energy = s.square();
        var cumulative = energy.cumsum(0) / energy.sum();
        var values = cumulative.data<double>().ToArray();
        var rank = s.data<double>().Count(v => v > s[0].item<double>() * 1e-10);
        var k = Math.Min(rank, Array.FindIndex(values, v => v >= varianceKept - 1e-12) + 1);
        if (k <= 0) k = Math.Max(1, rank);
        return u[.., ..k];
    }
}
