namespace Stitching.Models.Tokenization;

/// <summary>
/// The result of <see cref="HfTokenizer.Encode"/>: token ids with their token strings, the UTF-16 character span
/// [Start, End) each token covers in the original text, and whether each token is special (added by the
/// post-processor or a special added token found in the text).
/// </summary>
public sealed record Encoding(
    IReadOnlyList<int> Ids,
    IReadOnlyList<string> Tokens,
    IReadOnlyList<(int Start, int End)> Offsets,
    IReadOnlyList<bool> SpecialTokensMask)
{
    /// <summary>Number of tokens.</summary>
    public int Count => Ids.Count;
}
