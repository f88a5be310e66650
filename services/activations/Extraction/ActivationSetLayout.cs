namespace Stitching.Activations.Extraction;

/// <summary>
/// On-disk layout of an ActivationSet artifact (kind "activation-set"): shard-NNNNN.safetensors files,
/// each holding whole rows of the TokenSet: one float32 tensor per hook named exactly as the hook,
/// [n, d], plus token_ids [n] I32, special [n] U8, row [n] I32 and position [n] I32 so consumers can
/// align two sets token by token. Manifest metadata: model, fingerprint, dtype, hooks, token_set,
/// context, shards, tokens, width.
/// </summary>
public static class ActivationSetLayout
{
    public const string Kind = "activation-set";
    public const string TokenSetKind = "token-set";

    public static string ShardFile(int index) => $"shard-{index:D5}.safetensors";
}
