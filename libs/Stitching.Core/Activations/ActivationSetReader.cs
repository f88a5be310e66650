using Stitching.Contracts.Common.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Caching;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;

namespace Stitching.Core.Activations;

/// <summary>
/// Reads an ActivationSet (<see cref="ActivationSetLayout"/>) one shard at a time through the shard cache,
/// so memory holds a shard, never the set. The one reader of the layout: the stitch service's row sources,
/// layer matching, SAE training and ReadActivations all read through it.
/// </summary>
public sealed class ActivationSetReader(IShardCache cache, ArtifactRef set, ActivationSetInfo info)
{
    public ActivationSetInfo Info { get; } = info;
    public ArtifactRef Ref { get; } = set;

    /// <summary>Opens the set a request names in <paramref name="field"/> (INVALID_ARGUMENT / NOT_FOUND as <see cref="ArtifactStore.Require"/>).</summary>
    public static ActivationSetReader Open(ArtifactStore store, IShardCache cache, ArtifactRef? set, string field) =>
        new(cache, set!, ActivationSetLayout.Describe(store.Require(set, ActivationSetLayout.Kind, field, "run Extract first or list artifacts of kind \"activation-set\".")));

    /// <summary>Shard <paramref name="index"/> (0 .. Shards-1).</summary>
    public async Task<ActivationShard> ReadAsync(int index, CancellationToken ct)
    {
        var file = ActivationSetLayout.ShardFile(index);
        var (bytes, _) = await cache.GetFileAsync(Ref, file, ct);
        return new ActivationShard(SafetensorsReader.FromBytes(bytes, $"{Ref.Id}/{file}"));
    }
}

/// <summary>One shard of an ActivationSet, parsed lazily: each tensor is read when asked for.</summary>
public sealed class ActivationShard(SafetensorsReader reader) : IDisposable
{
    private const string Holds = "an activation shard holds one [n, d] tensor per hook and token_ids, special, row, position [n].";

    public SafetensorsReader Reader => reader;

    /// <summary>Row-major float32 [n, d] of a hook.</summary>
    public float[] Values(string hook) => reader.Require(hook, "hook", Holds).ToFloats();

    public int[] TokenIds() => Ints(reader.Require(ActivationSetLayout.TokenIdsTensor, "activation_set", Holds));

    /// <summary>TokenSet row of each token.</summary>
    public int[] Rows() => Ints(reader.Require(ActivationSetLayout.RowTensor, "activation_set", Holds));

    /// <summary>1 for special tokens (BOS); null when the shard carries no flags (every token is ordinary).</summary>
    public byte[]? Special() => reader.Contains(ActivationSetLayout.SpecialTensor) ? reader.Read(ActivationSetLayout.SpecialTensor).Data.ToArray() : null;

    private static int[] Ints(HostTensor t) => t.ToInts(t.Name);

    public void Dispose() => reader.Dispose();
}
