namespace Stitching.Stitch.Data;

/// <summary>
/// Consecutive token rows of one side: float32 values [Rows, Width] row-major, and where the source
/// knows them, each token's id, special flag and TokenSet row (for alignment checks, masking and the
/// held-out split).
/// </summary>
public sealed record RowBlock(float[] Values, int Rows, int Width, int[]? TokenIds, byte[]? Special, int[]? RowIds)
{
    /// <summary>Rows [start, start + count) of this block.</summary>
    public RowBlock Slice(int start, int count) => new(
        Values.AsSpan(start * Width, count * Width).ToArray(), count, Width,
        TokenIds?.AsSpan(start, count).ToArray(), Special?.AsSpan(start, count).ToArray(), RowIds?.AsSpan(start, count).ToArray());

    /// <summary>Concatenates blocks of one width.</summary>
    public static RowBlock Concat(IReadOnlyList<RowBlock> blocks)
    {
        if (blocks.Count == 1) return blocks[0];
        var width = blocks[0].Width;
        return new RowBlock(blocks.SelectMany(b => b.Values).ToArray(), blocks.Sum(b => b.Rows), width,
            blocks.All(b => b.TokenIds is not null) ? blocks.SelectMany(b => b.TokenIds!).ToArray() : null,
            blocks.All(b => b.Special is not null) ? blocks.SelectMany(b => b.Special!).ToArray() : null,
            blocks.All(b => b.RowIds is not null) ? blocks.SelectMany(b => b.RowIds!).ToArray() : null);
    }
}
