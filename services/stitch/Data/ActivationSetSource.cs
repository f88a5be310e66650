using Stitching.Core.Activations;

namespace Stitching.Stitch.Data;

/// <summary>
/// Rows of one hook of an ActivationSet, one shard at a time through <see cref="ActivationSetReader"/>,
/// so memory holds a shard, never the set.
/// </summary>
public sealed class ActivationSetSource(ActivationSetReader set, string hook, string sideField) : IRowSource
{
    private int _next;

    public string Field => sideField;
    public int Width => set.Info.Width;
    public long Tokens => set.Info.Tokens;
    public string Hook => hook;
    public string TokenSet => set.Info.TokenSet;
    public string Model => set.Info.Model;

    public async Task<RowBlock?> NextAsync(CancellationToken ct)
    {
        if (_next >= set.Info.Shards) return null;
        using var shard = await set.ReadAsync(_next++, ct);
        var values = shard.Values(hook);
        var ids = shard.TokenIds();
        return new RowBlock(values, ids.Length, Width, ids, shard.Special() ?? new byte[ids.Length], shard.Rows());
    }
}
