using Stitching.Core.Activations;
using Stitching.Contracts.Common.V1;
using Stitching.Core.Caching;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;

namespace Stitching.Sae.Training;

/// <summary>
/// One hook of an ActivationSet (<see cref="ActivationSetLayout"/>), read shard by shard through
/// the Redis shard cache. Rows flagged special (BOS) are dropped unless asked for.
/// </summary>
public sealed class ActivationSetShards(IShardCache cache, ArtifactRef set, ArtifactManifest manifest, string hook, bool includeSpecial) : IShardSource
{
    public int Shards { get; } = ActivationSetLayout.Shards(manifest);
    public int Width { get; } = ActivationSetLayout.Width(manifest);
    public long Tokens { get; } = ActivationSetLayout.Tokens(manifest);

    public async Task<ShardRows> LoadAsync(int index, CancellationToken ct)
    {
        var file = ActivationSetLayout.ShardFile(index);
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
