using Stitching.Core.Activations;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Caching;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Metrics;
using Stitching.Stitch.Data;
using static TorchSharp.torch;

namespace Stitching.Stitch.Matching;

/// <summary>
/// Layer pairing (paper section 2): SVCCA and linear CKA between every hook of A and every hook of B on
/// the first <c>max_tokens</c> non-special tokens both sets share; the best l_B per l_A maximises SVCCA.
/// </summary>
public sealed class LayerMatcher(IShardCache cache, TorchWorker worker)
{
    public const int DefaultTokens = 4096;
    public const double DefaultVariance = 0.99;

    public async Task<MatchLayersResponse> MatchAsync(ArtifactManifest a, ArtifactManifest b, MatchLayersRequest request, CancellationToken ct)
    {
        if (a.Metadata.GetValueOrDefault("token_set") != b.Metadata.GetValueOrDefault("token_set"))
            throw StitchingException.InvalidArgument("activation_set_b", "is over a different TokenSet from activation_set_a; extract both models in one paired extraction.");
        var tokens = request.MaxTokens == 0 ? DefaultTokens : request.MaxTokens;
        var variance = request.SvccaVariance == 0 ? DefaultVariance : request.SvccaVariance;
        if (tokens < 2) throw StitchingException.InvalidArgument("max_tokens", "must be at least 2 (default 4096).");
        if (variance is <= 0 or > 1) throw StitchingException.InvalidArgument("svcca_variance", "must lie in (0, 1] (default 0.99).");
        var hooksA = Hooks(a, request.HooksA, "hooks_a");
        var hooksB = Hooks(b, request.HooksB, "hooks_b");
        var sa = await TokenSample.ReadAsync(cache, a, hooksA, (_, clean) => clean >= tokens, ct);
        var prefix = sa.PrefixFor(tokens);
        var sb = await TokenSample.ReadAsync(cache, b, hooksB, (raw, _) => raw >= prefix, ct);
        for (var i = 0; i < prefix; i++)
            if (sa.TokenIds[i] != sb.TokenIds[i])
                throw StitchingException.InvalidArgument("activation_set_b", $"token {i} differs between the sets; they must hold the same TokenSet rows.");
        var keep = Enumerable.Range(0, prefix).Where(i => sa.Special[i] == 0).Select(i => (long)i).ToArray();
        if (keep.Length < 2) throw StitchingException.InvalidArgument("activation_set_a", "holds fewer than 2 non-special tokens; extract more text.");
        return await worker.RunAsync(() =>
        {
            var index = tensor(keep);
            var xa = hooksA.Select(h => tensor(sa.Values[h].ToArray(), [sa.TokenIds.Count, sa.Width]).index_select(0, index)).ToList();
            var xb = hooksB.Select(h => tensor(sb.Values[h].ToArray(), [sb.TokenIds.Count, sb.Width]).index_select(0, index)).ToList();
            var response = new MatchLayersResponse { Tokens = keep.Length, SvccaVariance = variance, HooksA = { hooksA }, HooksB = { hooksB } };
            foreach (var x in xa)
            {
                var row = xb.Select(y => RepresentationSimilarity.Svcca(x, y, variance)).ToList();
                response.Svcca.AddRange(row);
                response.Cka.AddRange(xb.Select(y => RepresentationSimilarity.LinearCka(x, y)));
                response.BestB.Add(row.IndexOf(row.Max()));
            }
            return response;
        }, ct);
    }

    private static List<string> Hooks(ArtifactManifest m, IReadOnlyCollection<string> asked, string field)
    {
        var all = ActivationSetLayout.Hooks(m);
        if (asked.Count == 0) return all.ToList();
        foreach (var h in asked)
            if (!all.Contains(h)) throw StitchingException.InvalidArgument(field, $"hook '{h}' is not in activation set {m.Ref.Id}; it has: {string.Join(", ", all)}.");
        return asked.ToList();
    }
}
