using System.Runtime.InteropServices;
using Stitching.Contracts.Common.V1;
using Stitching.Core.Caching;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;

namespace Stitching.Stitch.Data;

/// <summary>
/// Rows of one hook of an ActivationSet (services/activations ActivationSetLayout), one shard at a time
/// through the Redis shard cache, so memory holds a shard, never the set.
/// </summary>
public sealed class ActivationSetSource(ArtifactRef set, ArtifactManifest manifest, string hook, IShardCache cache, string sideField) : IRowSource
{
    public const string Kind = "activation-set";
    private readonly int _shards = int.Parse(manifest.Metadata.GetValueOrDefault("shards", "0"));
    private int _next;

    public string Field => sideField;
    public int Width { get; } = int.Parse(manifest.Metadata.GetValueOrDefault("width", "0"));
    public long Tokens { get; } = (long)manifest.Metrics.GetValueOrDefault("tokens", 0);
    public string Hook => hook;
    public string TokenSet => manifest.Metadata.GetValueOrDefault("token_set", "");
    public string Model => manifest.Metadata.GetValueOrDefault("model", "");

    /// <summary>Hooks the set holds, in manifest order.</summary>
    public static IReadOnlyList<string> Hooks(ArtifactManifest m) =>
        m.Metadata.GetValueOrDefault("hooks", "").Split(',', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>The hook to read: the one asked for (must exist), or the set's only hook.</summary>
    public static string ChooseHook(ArtifactManifest m, string? asked, string field)
    {
        var hooks = Hooks(m);
        if (!string.IsNullOrEmpty(asked))
            return hooks.Contains(asked) ? asked
                : throw StitchingException.InvalidArgument(field, $"hook '{asked}' is not in activation set {m.Ref.Id}; it has: {string.Join(", ", hooks)}.");
        return hooks.Count == 1 ? hooks[0]
            : throw StitchingException.InvalidArgument(field, $"activation set {m.Ref.Id} holds {hooks.Count} hooks ({string.Join(", ", hooks)}); name one.");
    }

    public async Task<RowBlock?> NextAsync(CancellationToken ct)
    {
        if (_next >= _shards) return null;
        var file = $"shard-{_next++:D5}.safetensors";
        using var reader = SafetensorsReader.FromBytes((await cache.GetFileAsync(set, file, ct)).Bytes, $"{set.Id}/{file}");
        var values = reader.Read(hook);
        return new RowBlock(values.ToFloats(), (int)values.Shape[0], (int)values.Shape[1],
            Ints(reader.Read("token_ids")), reader.Read("special").Data.ToArray(), Ints(reader.Read("row")));
    }

    private static int[] Ints(HostTensor t) => MemoryMarshal.Cast<byte, int>(t.Data.Span).ToArray();
}
