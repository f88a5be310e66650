namespace Stitching.Core.Compute;

/// <summary>
/// Analytic FLOP counts, the currency of the paper's claim (docs/flops.md has the conventions).
/// A multiply-add counts as 2 FLOPs; elementwise work is ignored unless a caller adds it explicitly.
/// </summary>
public static class Flops
{
    /// <summary>[m, k] x [k, n]: 2 m n k.</summary>
    public static double Matmul(long m, long k, long n) => 2.0 * m * k * n;
}
