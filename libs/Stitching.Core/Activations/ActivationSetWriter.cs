using Stitching.Contracts.Common.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;

namespace Stitching.Core.Activations;

/// <summary>
/// Writes an ActivationSet (<see cref="ActivationSetLayout"/>) shard by shard into a staged artifact; the
/// manifest gets the layout's metadata on <see cref="Describe"/>. The one writer of the layout.
/// </summary>
public sealed class ActivationSetWriter(ArtifactWriter writer, int firstShard = 0)
{
    /// <summary>Shards written by this writer (a slice's start at <c>firstShard</c>, so its files carry the set's own shard numbers).</summary>
    public int Shards { get; private set; }

    /// <summary>Appends the next shard: one [n, d] float32 tensor per hook plus token_ids, special, row, position [n].</summary>
    public void WriteShard(IReadOnlyList<HostTensor> tensors) =>
        writer.WriteFile(ActivationSetLayout.ShardFile(firstShard + Shards++), s => SafetensorsWriter.Write(s, tensors));

    /// <summary>Records the set's description in the manifest (its shard count is the number written).</summary>
    public ArtifactManifest Describe(ActivationSetInfo info)
    {
        ActivationSetLayout.Write(writer.Manifest, info with { Shards = Shards });
        return writer.Manifest;
    }
}
