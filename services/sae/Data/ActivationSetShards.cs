using Stitching.Core.Activations;

namespace Stitching.Sae.Data;

/// <summary>
/// One hook of an ActivationSet, read shard by shard through <see cref="ActivationSetReader"/>.
/// Rows flagged special (BOS) are dropped unless asked for.
/// </summary>
public sealed class ActivationSetShards(ActivationSetReader set, string hook, bool includeSpecial) : IShardSource
{
    public int Shards => set.Info.Shards;
    public int Width => set.Info.Width;
    public long Tokens => set.Info.Tokens;

    public async Task<ShardRows> LoadAsync(int index, CancellationToken ct)
    {
        using var shard = await set.ReadAsync(index, ct);
        var values = shard.Values(hook);
        var n = values.Length / Width;
        if (includeSpecial || shard.Special() is not { } special) return new ShardRows(values, n);
        var kept = new List<float>(values.Length);
        for (var r = 0; r < n; r++)
            if (special[r] == 0) kept.AddRange(values.AsSpan(r * Width, Width));
        return new ShardRows(kept.ToArray(), kept.Count / Width);
    }
}
