using Stitching.Contracts.Common.V1;
using Stitching.Core.Caching;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;

namespace Stitching.Sae.Training;

/// <summary>
/// One hook of an ActivationSet (services/activations ActivationSetLayout: shard-NNNNN.safetensors with a
/// float32 [n, d] tensor named as the hook and a U8 "special" flag per row), read shard by shard through
/// the Redis shard cache. Rows flagged special (BOS) are dropped unless asked for.
/// </summary>
public sealed class ActivationSetShards(IShardCache cache, ArtifactRef set, ArtifactManifest manifest, string hook, bool includeSpecial) : IShardSource
{
    public const string Kind = "activation-set";

    public int Shards { get; } = int.Parse(manifest.Metadata.GetValueOrDefault("shards", "0"));
    public int Width { get; } = int.Parse(manifest.Metadata.GetValueOrDefault("width", "0"));
    public long Tokens { get; } = long.TryParse(manifest.Metadata.GetValueOrDefault("tokens", ""), out var t) ? t : (long)manifest.Metrics.GetValueOrDefault("tokens", 0);

    /// <summary>The hook to train on: the one asked for (must exist), or the set's only hook.</summary>
    public static string ChooseHook(ArtifactManifest m, string? asked, string field)
    {
        var hooks = m.Metadata.GetValueOrDefault("hooks", "").Split(',', StringSplitOptions.RemoveEmptyEntries);
        if (!string.IsNullOrEmpty(asked))
            return hooks.Contains(asked) ? asked
                : throw StitchingException.InvalidArgument(field, $"hook '{asked}' is not in activation set {m.Ref.Id}; it has: {string.Join(", ", hooks)}.");
        return hooks.Length == 1 ? hooks[0]
            : throw StitchingException.InvalidArgument(field, $"activation set {m.Ref.Id} holds {hooks.Length} hooks ({string.Join(", ", hooks)}); name one.");
    }

    public async Task<ShardRows> LoadAsync(int index, CancellationToken ct)
    {
        var file = $"shard-{index:D5}.safetensors";
        var (bytes, _) = await cache.GetFileAsync(set, file, ct);
        using var reader = SafetensorsReader.FromBytes(bytes, $"{set.Id}/{file}");
        var values = reader.Read(hook).ToFloats();
        var n = values.Length / Width;
        if (includeSpecial || !reader.Contains("special")) return new ShardRows(values, n);
        var special = reader.Read("special").Data.Span;
        var kept = new List<float>(values.Length);
        for (var r = 0; r < n; r++)
            if (special[r] == 0) kept.AddRange(values.AsSpan(r * Width, Width));
        return new ShardRows(kept.ToArray(), kept.Count / Width);
    }
}
