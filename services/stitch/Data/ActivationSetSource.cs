using Stitching.Core.Activations;
using System.Runtime.InteropServices;
using Stitching.Contracts.Common.V1;
using Stitching.Core.Caching;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;

namespace Stitching.Stitch.Data;

/// <summary>
/// Rows of one hook of an ActivationSet (<see cref="ActivationSetLayout"/>), one shard at a time
/// through the Redis shard cache, so memory holds a shard, never the set.
/// </summary>
public sealed class ActivationSetSource(ArtifactRef set, ArtifactManifest manifest, string hook, IShardCache cache, string sideField) : IRowSource
{
    private readonly int _shards = ActivationSetLayout.Shards(manifest);
    private int _next;

    public string Field => sideField;
    public int Width { get; } = ActivationSetLayout.Width(manifest);
    public long Tokens { get; } = (long)manifest.Metrics.GetValueOrDefault("tokens", 0);
    public string Hook => hook;
    public string TokenSet => manifest.Metadata.GetValueOrDefault("token_set", "");
    public string Model => manifest.Metadata.GetValueOrDefault("model", "");

    public async Task<RowBlock?> NextAsync(CancellationToken ct)
    {
        if (_next >= _shards) return null;
        var file = ActivationSetLayout.ShardFile(_next++);
        using var reader = SafetensorsReader.FromBytes((await cache.GetFileAsync(set, file, ct)).Bytes, $"{set.Id}/{file}");
        var values = reader.Read(hook);
        return new RowBlock(values.ToFloats(), (int)values.Shape[0], (int)values.Shape[1],
            Ints(reader.Read("token_ids")), reader.Read("special").Data.ToArray(), Ints(reader.Read("row")));
    }

    private static int[] Ints(HostTensor t) => MemoryMarshal.Cast<byte, int>(t.Data.Span).ToArray();
}
