using static TorchSharp.torch;

namespace Stitching.Core.Metrics;

/// <summary>
/// Sparsity of a code (SAE latents), the single definition (docs/metrics.md). Latents are [n, M]; a
/// latent is active on a token when its value is non-zero.
/// </summary>
public static class SparsityMetrics
{
    /// <summary>L0 = (1/n) sum_t #{i : f_i(x_t) != 0}, the mean number of active latents per token.</summary>
    public static double L0(Tensor latents)
    {
        using var scope = NewDisposeScope();
        return latents.ne(0).sum(ScalarType.Float64).item<double>() / Math.Max(1, latents.shape[0]);
    }

    /// <summary>Active latents: [M] bool, true where a latent fired on at least one of the n tokens.</summary>
    public static Tensor Fired(Tensor latents) => latents.ne(0).any(0);

    /// <summary>
    /// Dead fraction = #{i : latent i has not fired within the window} / M, from per-latent counts of tokens
    /// since the latent last fired (dead when the count is at least <paramref name="windowTokens"/>).
    /// </summary>
    public static double DeadFraction(Tensor tokensSinceFired, long windowTokens)
    {
        using var scope = NewDisposeScope();
        return tokensSinceFired.ge(windowTokens).sum(ScalarType.Float64).item<double>() / Math.Max(1, tokensSinceFired.shape[0]);
    }
}
