using Stitching.Contracts.Common.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Errors;

namespace Stitching.Core.Activations;

/// <summary>
/// On-disk layout of an ActivationSet artifact (kind "activation-set"), the one definition the
/// activations service writes (<see cref="ActivationSetWriter"/>) and the stitch and SAE services read
/// (<see cref="ActivationSetReader"/>): shard-NNNNN.safetensors files, each holding whole rows of the
/// TokenSet: one float32 tensor per hook named exactly as the hook, [n, d], plus token_ids [n] I32,
/// special [n] U8, row [n] I32 and position [n] I32 so consumers can align two sets token by token.
/// Manifest metadata: model, model_path, fingerprint, dtype, hooks (comma-separated), token_set, context,
/// shards, width; metrics tokens (and the extraction's flops, seconds, tokens_per_second).
/// </summary>
public static class ActivationSetLayout
{
    public const string Kind = ArtifactKinds.ActivationSet;
    public const string TokenSetKind = ArtifactKinds.TokenSet;

    /// <summary>The token-embedding output, a pure lookup of the current token.</summary>
    public const string EmbeddingHook = "blocks.0.hook_resid_pre";

    public const string TokenIdsTensor = "token_ids", SpecialTensor = "special", RowTensor = "row", PositionTensor = "position";

    public static string ShardFile(int index) => $"shard-{index:D5}.safetensors";

    /// <summary>What a set's manifest says about it (the reading half of the layout).</summary>
    public static ActivationSetInfo Describe(ArtifactManifest m)
    {
        var md = m.Metadata;
        int Int(string key) => int.TryParse(md.GetValueOrDefault(key, ""), out var v) ? v : 0;
        return new ActivationSetInfo(
            m.Ref?.Id ?? "", md.GetValueOrDefault("model", ""), md.GetValueOrDefault("model_path", ""), md.GetValueOrDefault("fingerprint", ""),
            md.GetValueOrDefault("dtype", ""), md.GetValueOrDefault("hooks", "").Split(',', StringSplitOptions.RemoveEmptyEntries),
            md.GetValueOrDefault("token_set", ""), Int("context"), Int("width"), Int("shards"), (long)m.Metrics.GetValueOrDefault("tokens", 0));
    }

    /// <summary>Writes what <see cref="Describe"/> reads (the writing half).</summary>
    public static void Write(ArtifactManifest m, ActivationSetInfo info)
    {
        m.Metadata["model"] = info.Model;
        m.Metadata["model_path"] = info.ModelPath;
        m.Metadata["fingerprint"] = info.Fingerprint;
        m.Metadata["dtype"] = info.DType;
        m.Metadata["hooks"] = string.Join(",", info.Hooks);
        m.Metadata["token_set"] = info.TokenSet;
        m.Metadata["context"] = info.Context.ToString();
        m.Metadata["width"] = info.Width.ToString();
        m.Metadata["shards"] = info.Shards.ToString();
        m.Metrics["tokens"] = info.Tokens;
    }
}

/// <summary>An ActivationSet as its manifest describes it (no proto types: what domain code reads).</summary>
public sealed record ActivationSetInfo(
    string Id, string Model, string ModelPath, string Fingerprint, string DType, IReadOnlyList<string> Hooks,
    string TokenSet, int Context, int Width, int Shards, long Tokens)
{
    /// <summary>The hook to read: the one asked for (must exist), or the set's only hook.</summary>
    public string ChooseHook(string? asked, string field)
    {
        if (!string.IsNullOrEmpty(asked))
            return Hooks.Contains(asked) ? asked
                : throw StitchingException.InvalidArgument(field, $"hook '{asked}' is not in activation set {Id}; it has: {string.Join(", ", Hooks)}.");
        return Hooks.Count == 1 ? Hooks[0]
            : throw StitchingException.InvalidArgument(field, $"activation set {Id} holds {Hooks.Count} hooks ({string.Join(", ", Hooks)}); name one.");
    }

    /// <summary>Checks that every hook asked for is in the set.</summary>
    public void RequireHooks(IEnumerable<string> asked, string field)
    {
        foreach (var h in asked)
            if (!Hooks.Contains(h)) throw StitchingException.InvalidArgument(field, $"hook '{h}' is not in activation set {Id}; it has: {string.Join(", ", Hooks)}.");
    }
}
