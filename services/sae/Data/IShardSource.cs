namespace Stitching.Sae.Data;

/// <summary>Rows of one shard: row-major float32 [Count, width], special tokens already dropped or kept.</summary>
public sealed record ShardRows(float[] Values, int Count);

/// <summary>A sequence of shards of training rows (an ActivationSet hook, or synthetic data in tests).</summary>
public interface IShardSource
{
    int Shards { get; }
    int Width { get; }
    long Tokens { get; }
    Task<ShardRows> LoadAsync(int index, CancellationToken ct);
}
