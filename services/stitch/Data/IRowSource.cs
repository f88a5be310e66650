namespace Stitching.Stitch.Data;

/// <summary>One side of a pair, read block by block in token order (a shard at a time, or a row range).</summary>
public interface IRowSource
{
    /// <summary>The field that named it, for error messages ("a", "b").</summary>
    string Field { get; }
    int Width { get; }
    /// <summary>Tokens in the whole source.</summary>
    long Tokens { get; }
    /// <summary>The next block, or null at the end.</summary>
    Task<RowBlock?> NextAsync(CancellationToken ct);
}
