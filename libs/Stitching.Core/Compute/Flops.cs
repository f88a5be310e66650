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

    /// <summary>
    /// Sufficient statistics of a stitch's least squares over n tokens, both directions at once:
    /// X_A^T X_A, X_B^T X_B and X_A^T X_B, i.e. 2 n (d_A^2 + d_B^2 + d_A d_B). Column sums are elementwise.
    /// </summary>
    public static double StitchStatistics(long tokens, long widthA, long widthB) =>
        Matmul(widthA, tokens, widthA) + Matmul(widthB, tokens, widthB) + Matmul(widthA, tokens, widthB);

    /// <summary>
    /// Solving (C + lambda I) P = C_xy for P [d, k] by Cholesky: factorisation d^3 / 3 multiply-adds
    /// (2 d^3 / 3 FLOPs) and two triangular solves with k right-hand sides (2 d^2 k FLOPs).
    /// </summary>
    public static double CholeskySolve(long d, long k) => 2.0 * d * d * d / 3.0 + 2.0 * d * d * k;

    /// <summary>
    /// The fallback for ill-conditioned systems: symmetric eigendecomposition with vectors, about
    /// 9 d^3 FLOPs (Golub and Van Loan, symmetric QR algorithm), then P = V diag(1/w) V^T C_xy (4 d^2 k).
    /// </summary>
    public static double EigenSolve(long d, long k) => 9.0 * d * d * d + 2 * Matmul(d, d, k);

    /// <summary>
    /// One Adam step of a stitch on m tokens: the forward maps are A P_up and B P_down (2 matmuls of
    /// 2 m d_A d_B), plus the round trips T_down(T_up(A)) and T_up(T_down(B)) when alpha > 0 (2 more);
    /// backward counts twice the forward, so a step is 3x its forward. Optimizer updates are elementwise.
    /// </summary>
    public static double AdamStitchStep(long tokens, long widthA, long widthB, bool roundTrips) =>
        3 * (roundTrips ? 4 : 2) * Matmul(tokens, widthA, widthB);

    /// <summary>
    /// SAE forward on n tokens, width d, M latents, as the dense kernels run it: encoder x W_enc
    /// (2 n d M) and decoder f W_dec with f stored dense (2 n M d), so 4 n d M. The activation
    /// (top-k, threshold, ReLU) and biases are elementwise and not counted.
    /// </summary>
    public static double SaeForward(long tokens, long width, long latents) => 2 * Matmul(tokens, width, latents);

    /// <summary>
    /// SAE backward on n tokens: decoder weight gradient f^T g (2 n M d), latent gradient g W_dec^T
    /// (2 n M d) and encoder weight gradient x^T g_pre (2 n d M); the input needs no gradient. 6 n d M.
    /// </summary>
    public static double SaeBackward(long tokens, long width, long latents) => 3 * Matmul(tokens, width, latents);

    /// <summary>
    /// One SAE training step: forward + backward = 10 n d M, plus, with AuxK on, the dead-latent
    /// reconstruction f_dead W_dec forward and its W_dec gradient (4 n M d). Adam, decoder-row
    /// renormalisation and gradient projection are elementwise (O(M d)) and not counted.
    /// </summary>
    public static double SaeTrainingStep(long tokens, long width, long latents, bool auxK) =>
        SaeForward(tokens, width, latents) + SaeBackward(tokens, width, latents) + (auxK ? 2 * Matmul(tokens, latents, width) : 0);
}
