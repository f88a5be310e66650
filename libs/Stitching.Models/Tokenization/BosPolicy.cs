namespace Stitching.Models.Tokenization;

/// <summary>Whether <see cref="HfTokenizer.EncodeWithPolicy"/> starts the ids with the BOS token.</summary>
public enum BosPolicy
{
    /// <summary>As the model ships it: tokenizer_config.json's add_bos_token when given, else the post-processor.</summary>
    Model,
    /// <summary>Always start with BOS (added when the post-processor did not).</summary>
    Always,
    /// <summary>Never add BOS (a BOS the post-processor would add is dropped; one typed in the text stays).</summary>
    Never,
}
