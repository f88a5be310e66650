namespace Stitching.Core.Compute;

/// <summary>
/// Analytic FLOP counts, the currency of the paper's claim (docs/flops.md has the conventions).
/// A multiply-add counts as 2 FLOPs; elementwise work is ignored unless a caller adds it explicitly.
/// </summary>
public static class Flops
{
    /// <summary>[m, k] x [k, n]: 2 m n k.</summary>
    public static double Matmul(long m, long k, long n) => 2.0 * m * k * n;

    /// <summary>
    /// One pre-LN transformer block's forward over <paramref name="batch"/> sequences of
    /// <paramref name="tokens"/> tokens, residual width d and MLP width f, as eager attention computes it
    /// (the full T x T score matrix, masked afterwards, so the causal half is not discounted).
    /// With N = batch * tokens:
    /// <list type="bullet">
    /// <item>q, k, v projections: 2 N d (3d)</item>
    /// <item>scores q k^T over all heads: 2 batch T T d</item>
    /// <item>weighted sum of values: 2 batch T T d</item>
    /// <item>attention output projection: 2 N d d</item>
    /// <item>MLP up and down: 2 N d f + 2 N f d</item>
    /// </list>
    /// Total: N (8 d^2 + 4 d f) + 4 batch T^2 d; for GPT-2 (f = 4d) that is 24 N d^2 + 4 batch T^2 d.
    /// Norms, softmax, activations, biases and embeddings are elementwise and not counted.
    /// </summary>
    public static double TransformerBlockForward(long batch, long tokens, long width, long mlpWidth)
    {
        var n = batch * tokens;
        return Matmul(n, width, 3 * width)
            + Matmul(n, width, tokens)
            + Matmul(n, tokens, width)
            + Matmul(n, width, width)
            + Matmul(n, width, mlpWidth) + Matmul(n, mlpWidth, width);
    }
}
