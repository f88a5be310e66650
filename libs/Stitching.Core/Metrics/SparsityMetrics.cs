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

/// <summary>
/// Sparsity of a code accumulated over batches: L0 (mean active latents per token), per-latent firing
/// counts, the dead fraction (latents that fired on no token) and a histogram of log10 firing densities.
/// Torch thread for <see cref="Add"/>.
/// </summary>
public sealed class SparsityTally(int latents)
{
    private readonly long[] _fired = new long[latents];
    private long _active;

    public long Tokens { get; private set; }

    public void Add(Tensor codes)
    {
        using var scope = NewDisposeScope();
        var active = codes.ne(0);
        _active += active.sum().item<long>();
        var perLatent = active.sum([0]).to(ScalarType.Int64).data<long>().ToArray();
        for (var i = 0; i < perLatent.Length; i++) _fired[i] += perLatent[i];
        Tokens += codes.shape[0];
    }

    /// <summary>(1/n) sum_t #{i : f_i(x_t) != 0}.</summary>
    public double L0 => _active / (double)Tokens;

    /// <summary>#{i : latent i fired on no token} / M.</summary>
    public double DeadFraction => _fired.Count(c => c == 0) / (double)_fired.Length;

    /// <summary>Counts of live latents per bin of log10(fired / tokens), bins [edges_i, edges_i+1) from -8 to 0 by 0.5.</summary>
    public (double[] Edges, long[] Counts) DensityHistogram()
    {
        var edges = Enumerable.Range(0, 17).Select(i => -8 + 0.5 * i).ToArray();
        var counts = new long[edges.Length - 1];
        foreach (var c in _fired.Where(c => c > 0))
        {
            var d = Math.Log10(c / (double)Tokens);
            var bin = Math.Clamp((int)Math.Floor((d - edges[0]) / 0.5), 0, counts.Length - 1);
            counts[bin]++;
        }
        return (edges, counts);
    }
}
