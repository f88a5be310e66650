using Stitching.Contracts.Common.V1;
using Stitching.Core.Errors;

namespace Stitching.Core.Activations;

/// <summary>
/// On-disk layout of an ActivationSet artifact (kind "activation-set"), the one definition the
/// activations service writes and the stitch and SAE services read: shard-NNNNN.safetensors files, each
/// holding whole rows of the TokenSet: one float32 tensor per hook named exactly as the hook, [n, d],
/// plus token_ids [n] I32, special [n] U8, row [n] I32 and position [n] I32 so consumers can align two
/// sets token by token. Manifest metadata: model, fingerprint, dtype, hooks (comma-separated),
/// token_set, context, shards, width; metric tokens.
/// </summary>
public static class ActivationSetLayout
{
    public const string Kind = "activation-set";
    public const string TokenSetKind = "token-set";

    public static string ShardFile(int index) => $"shard-{index:D5}.safetensors";

    public static int Shards(ArtifactManifest m) => int.Parse(m.Metadata.GetValueOrDefault("shards", "0"));

    /// <summary>Tokens the set holds (manifest metric "tokens"; metadata "tokens" in hand-made sets).</summary>
    public static long Tokens(ArtifactManifest m) =>
        m.Metrics.TryGetValue("tokens", out var t) ? (long)t : long.TryParse(m.Metadata.GetValueOrDefault("tokens", ""), out var n) ? n : 0;

    /// <summary>The token-embedding output, a pure lookup of the current token.</summary>
    public const string EmbeddingHook = "blocks.0.hook_resid_pre";

    public static int Width(ArtifactManifest m) => int.Parse(m.Metadata.GetValueOrDefault("width", "0"));

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
}
