using Stitching.Core.Activations;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Metrics;
using Stitching.Stitch.Fitting;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Stitching.Stitch.Matching;

/// <summary>
/// Layer pairing (paper section 2, made robust; docs/metrics.md "Layer matching"). A strided sample of at
/// least <c>Tokens</c> non-special tokens across the whole paired set is split in halves by token id (a hash
/// of the id), so no token type is in both halves and a lookup table cannot be memorised. For every hook
/// pair: in-sample SVCCA and linear CKA on all sampled tokens; held-out SVCCA (fitted on one half, measured
/// on the other); held-out least-squares FVU of both directions (fitted on one half). The embedding output
/// blocks.0.hook_resid_pre is left out of the candidates unless asked for. The rule picks l_B per l_A.
/// </summary>
public sealed class LayerMatcher(TorchWorker worker)
{
    public async Task<LayerMatch> MatchAsync(ActivationSetReader a, ActivationSetReader b, MatchSettings settings, CancellationToken ct)
    {
        if (a.Info.TokenSet != b.Info.TokenSet)
            throw StitchingException.InvalidArgument("activation_set_b", "is over a different TokenSet from activation_set_a; extract both models in one paired extraction.");
        var hooksA = Hooks(a.Info, settings.HooksA, settings.IncludeEmbeddings, "hooks_a");
        var hooksB = Hooks(b.Info, settings.HooksB, settings.IncludeEmbeddings, "hooks_b");
        // Oversample by 1/8 for special tokens; the stride spreads the sample over every shard.
        var total = a.Info.Tokens;
        var stride = Math.Max(1, total / (settings.Tokens + settings.Tokens / 8));
        var sa = await TokenSample.ReadAsync(a, hooksA, stride, ct);
        var sb = await TokenSample.ReadAsync(b, hooksB, stride, ct);
        if (sa.TokenIds.Count != sb.TokenIds.Count || !sa.TokenIds.SequenceEqual(sb.TokenIds))
            throw StitchingException.InvalidArgument("activation_set_b", "holds other tokens than activation_set_a; they must hold the same TokenSet rows.");
        var keep = Enumerable.Range(0, sa.TokenIds.Count).Where(i => sa.Special[i] == 0).ToArray();
        var fit = keep.Where(i => InFittingHalf(sa.TokenIds[i])).Select(i => (long)i).ToArray();
        var held = keep.Where(i => !InFittingHalf(sa.TokenIds[i])).Select(i => (long)i).ToArray();
        if (fit.Length < 4 || held.Length < 4) throw StitchingException.InvalidArgument("activation_set_a", "holds too few non-special tokens for matching (at least 4 per half); extract more text.");
        return await worker.RunAsync(() =>
        {
            using var scope = NewDisposeScope();
            var (all, fitIdx, heldIdx) = (tensor(keep.Select(i => (long)i).ToArray()), tensor(fit), tensor(held));
            Tensor Rows(TokenSample s, string h) => tensor(s.Values[h].ToArray(), [s.TokenIds.Count, s.Width]);
            var xa = hooksA.Select(h => Rows(sa, h)).ToList();
            var xb = hooksB.Select(h => Rows(sb, h)).ToList();
            var n = hooksA.Count * hooksB.Count;
            var (svcca, heldSvcca, cka, up, down) = (new double[n], new double[n], new double[n], new double[n], new double[n]);
            var best = new int[hooksA.Count];
            for (var i = 0; i < hooksA.Count; i++)
            {
                for (var j = 0; j < hooksB.Count; j++)
                {
                    using var pair = NewDisposeScope();
                    var (x, y) = (xa[i], xb[j]);
                    var k = i * hooksB.Count + j;
                    svcca[k] = RepresentationSimilarity.Svcca(x.index_select(0, all), y.index_select(0, all), settings.Variance);
                    cka[k] = RepresentationSimilarity.LinearCka(x.index_select(0, all), y.index_select(0, all));
                    var (xf, yf, xh, yh) = (x.index_select(0, fitIdx), y.index_select(0, fitIdx), x.index_select(0, heldIdx), y.index_select(0, heldIdx));
                    heldSvcca[k] = RepresentationSimilarity.HeldOutSvcca(xf, yf, xh, yh, settings.Variance);
                    up[k] = HeldOutFvu(xf, yf, xh, yh);
                    down[k] = HeldOutFvu(yf, xf, yh, xh);
                }
                var row = Enumerable.Range(0, hooksB.Count).Select(j => i * hooksB.Count + j)
                    .Select(k => LayerMatch.Score(settings.Rule, svcca[k], heldSvcca[k], up[k], down[k])).ToList();
                best[i] = row.IndexOf(row.Max());
            }
            return new LayerMatch(hooksA, hooksB, svcca, heldSvcca, cka, up, down, best, settings, keep.Length, fit.Length, held.Length);
        }, ct);
    }

    /// <summary>Halves by token id (a multiplicative hash's top bit): the held-out half holds other token types.</summary>
    public static bool InFittingHalf(int tokenId) => (unchecked((uint)tokenId * 2654435761u) >> 31) == 0;

    /// <summary>FVU on (x_test, y_test) of the least-squares map fitted on (x_fit, y_fit) (the stitch's own solver).</summary>
    private static double HeldOutFvu(Tensor xFit, Tensor yFit, Tensor xTest, Tensor yTest)
    {
        using var stats = new SufficientStatistics();
        stats.Add(xFit, yFit);
        var solution = LeastSquares.Solve(stats.Up(), 0);
        return ReconstructionMetrics.Fvu(yTest, xTest.to(ScalarType.Float64).matmul(solution.P) + solution.B);
    }

    private static List<string> Hooks(ActivationSetInfo set, IReadOnlyCollection<string> asked, bool includeEmbeddings, string field)
    {
        if (asked.Count == 0)
        {
            var candidates = set.Hooks.Where(h => includeEmbeddings || h != ActivationSetLayout.EmbeddingHook).ToList();
            return candidates.Count > 0 ? candidates
                : throw StitchingException.InvalidArgument(field, $"activation set {set.Id} holds only the embedding output {ActivationSetLayout.EmbeddingHook}; extract deeper hooks or set include_embeddings.");
        }
        set.RequireHooks(asked, field);
        return asked.ToList();
    }
}
