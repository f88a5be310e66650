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

    /// <summary>
    /// Held-out SVCCA: the SVD truncation and the canonical directions are fitted on (X_fit, Y_fit) exactly
    /// as in <see cref="Svcca"/>; the held-out tokens are centred with the fitting means, projected on those
    /// directions, and the mean over min(k_x, k_y) pairs of the Pearson correlation of each pair of
    /// projections on the held-out tokens is returned (not clamped: a direction that does not generalise
    /// scores near zero or below). In-sample SVCCA is biased upwards when the data hold few distinct points
    /// (a lookup table of frequent tokens); this is not.
    /// </summary>
    public static double HeldOutSvcca(Tensor xFit, Tensor yFit, Tensor xTest, Tensor yTest, double varianceKept = 0.99)
    {
        using var scope = NewDisposeScope();
        var (px, ux) = CanonicalInputs(xFit, varianceKept);
        var (py, uy) = CanonicalInputs(yFit, varianceKept);
        var (a, _, bh) = linalg.svd(ux.t().matmul(uy), fullMatrices: false);
        var k = Math.Min(a.shape[1], bh.shape[0]);
        // Directions in input space: x -> (x - mean) V_x S_x^-1 a_i, and likewise for y.
        var cx = px(xTest).matmul(a[.., ..(int)k]);
        var cy = py(yTest).matmul(bh.t()[.., ..(int)k]);
        cx = cx - cx.mean([0], keepdim: true);
        cy = cy - cy.mean([0], keepdim: true);
        var num = (cx * cy).sum([0]).data<double>().ToArray();
        var den = (cx.square().sum([0]) * cy.square().sum([0])).sqrt().data<double>().ToArray();
        // A projection that is constant on the held-out tokens carries no correlation.
        return num.Zip(den, (n, d) => d > 0 ? n / d : 0).Average();
    }

    /// <summary>
    /// For one side's fitting data: a projection of any rows onto the whitened kept subspace,
    /// (rows - mean) V S^-1, and the fitting rows' own projection U (orthonormal columns).
    /// </summary>
    private static (Func<Tensor, Tensor> Project, Tensor U) CanonicalInputs(Tensor fit, double varianceKept)
    {
        var f = fit.to(ScalarType.Float64);
        var mean = f.mean([0], keepdim: true);
        var (u, s, vh) = linalg.svd(f - mean, fullMatrices: false);
        var k = KeptCount(s, varianceKept);
        var map = vh[..k].t() / s[..k].unsqueeze(0);
        return (rows => (rows.to(ScalarType.Float64) - mean).matmul(map), u[.., ..k]);
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
        return u[.., ..KeptCount(s, varianceKept)];
    }

    /// <summary>How many leading singular values hold <paramref name="varianceKept"/> of the energy (at least 1, at most the rank).</summary>
    private static int KeptCount(Tensor s, double varianceKept)
    {
        var energy = s.square();
        var cumulative = energy.cumsum(0) / energy.sum();
        var values = cumulative.data<double>().ToArray();
        var rank = s.data<double>().Count(v => v > s[0].item<double>() * 1e-10);
        var k = Math.Min(rank, Array.FindIndex(values, v => v >= varianceKept - 1e-12) + 1);
        if (k <= 0) k = Math.Max(1, rank);
        return k;
    }
}
