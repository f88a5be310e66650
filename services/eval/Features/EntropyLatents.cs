using static TorchSharp.torch;

namespace Stitching.Eval.Features;

/// <summary>What <see cref="EntropyLatentAnalysis"/> measured (docs/metrics.md "Entropy latents").</summary>
public sealed record EntropyResult(int SubspaceA, int SubspaceB, double Threshold, int LatentsA, int KeptB,
    double MeanA, double MeanB, double EntropyMeanA, double EntropyMeanB, double TopMeanA, double TopMeanB,
    double RandomMeanA, double RandomMeanB, double Correlation, IReadOnlyList<(int Latent, double A, double B)> Top);

/// <summary>
/// Entropy latents (paper section 8): a latent whose decoder direction lies mostly in the unembedding's near-null
/// space changes the residual's norm (and so the final norm's scale and the output entropy) without moving the
/// logits' direction. Near-null space of W_U [d, V]: the left singular vectors with the smallest ceil(2% of d)
/// singular values (eigenvectors of W_U W_U^T, float64). Fraction of latent i: ||U_r^T w_i||^2 / ||w_i||^2, w_i its
/// decoder row; A's latents against A's W_U, their transferred twins against B's.
/// </summary>
public static class EntropyLatentAnalysis
{
    public const double NullFraction = 0.02, DefaultThreshold = 0.5, TopFraction = 0.01;
    public const int TopListed = 10;

    /// <summary>ceil(2% of d), at least 1.</summary>
    public static int SubspaceDimension(long d) => Math.Max(1, (int)Math.Ceiling(NullFraction * d));

    /// <summary>Orthonormal basis [d, r] of W_U's near-null space (W_U [d, V]).</summary>
    public static Tensor NullBasis(Tensor unembedding)
    {
        using var scope = NewDisposeScope();
        var w = unembedding.to(ScalarType.Float64);
        var (_, vectors) = linalg.eigh(w.mm(w.t()));          // ascending eigenvalues = squared singular values
        return vectors[.., ..SubspaceDimension(w.shape[0])].contiguous().MoveToOuterDisposeScope();
    }

    /// <summary>Per row of <paramref name="decoder"/> [m, d]: the fraction of its squared norm in the span of <paramref name="basis"/> [d, r].</summary>
    public static double[] Fractions(Tensor decoder, Tensor basis)
    {
        using var scope = NewDisposeScope();
        var w = decoder.to(ScalarType.Float64);
        var inside = w.mm(basis.to(ScalarType.Float64)).pow(2).sum(1);
        return (inside / w.pow(2).sum(1).clamp_min(1e-300)).data<double>().ToArray();
    }

    public static EntropyResult Summarise(double[] a, double[] b, double[] randomA, double[] randomB, int subspaceA, int subspaceB, double threshold = DefaultThreshold)
    {
        var entropy = Enumerable.Range(0, a.Length).Where(i => a[i] >= threshold).ToArray();
        var byA = Enumerable.Range(0, a.Length).OrderByDescending(i => a[i]).ToArray();
        var top = byA.Take(Math.Max(1, (int)Math.Ceiling(TopFraction * a.Length))).ToArray();
        double Mean(IEnumerable<double> v) => v.DefaultIfEmpty(double.NaN).Average();
        return new EntropyResult(subspaceA, subspaceB, threshold, entropy.Length, entropy.Count(i => b[i] >= threshold),
            Mean(a), Mean(b), Mean(entropy.Select(i => a[i])), Mean(entropy.Select(i => b[i])), Mean(top.Select(i => a[i])), Mean(top.Select(i => b[i])),
            Mean(randomA), Mean(randomB), Pearson(a, b), byA.Take(TopListed).Select(i => (i, a[i], b[i])).ToList());
    }

    /// <summary>Pearson correlation of two equal-length series (float64; NaN when either is constant).</summary>
    public static double Pearson(double[] x, double[] y)
    {
        var (mx, my) = (x.Average(), y.Average());
        double sxy = 0, sxx = 0, syy = 0;
        for (var i = 0; i < x.Length; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) * (x[i] - mx); syy += (y[i] - my) * (y[i] - my); }
        return sxx > 0 && syy > 0 ? sxy / Math.Sqrt(sxx * syy) : double.NaN;
    }
}
