using System.Text.Json;
using static Stitching.Models.Tokenization.TokenizerJson;

namespace Stitching.Models.Tokenization;

/// <summary>One entry of tokenizer.json's added_tokens.</summary>
internal sealed record AddedToken(int Id, string Content, bool SingleWord, bool LStrip, bool RStrip, bool Normalized, bool Special);

/// <summary>
/// The added tokens, found in text leftmost-longest before the model runs: tokens with normalized=false in the raw
/// text, the others in the normalized text. lstrip/rstrip absorb neighbouring whitespace; single_word needs
/// non-word characters (or the text's edge) on both sides.
/// </summary>
internal sealed class AddedTokens
{
    private readonly Dictionary<char, AddedToken[]> _raw;
    private readonly Dictionary<char, AddedToken[]> _normalized;
    private readonly Dictionary<int, AddedToken> _byId = [];
    private readonly Dictionary<string, AddedToken> _byContent = new(StringComparer.Ordinal);

    public AddedTokens(IEnumerable<AddedToken> tokens)
    {
        foreach (var t in tokens) { _byId[t.Id] = t; _byContent[t.Content] = t; }
        // Longest first so the first hit at a position is the longest.
        var ordered = _byId.Values.Where(t => t.Content.Length > 0).OrderByDescending(t => t.Content.Length).ThenBy(t => t.Id).ToArray();
        _raw = ByFirstChar(ordered.Where(t => !t.Normalized));
        _normalized = ByFirstChar(ordered.Where(t => t.Normalized));
    }

    public static AddedTokens Parse(JsonElement root) => new(Array(root, "added_tokens").Select((t, i) => new AddedToken(
        Int(t, "id", -1) is >= 0 and var id ? id : throw Stitching.Core.Errors.StitchingException.FailedPrecondition(
            $"added_tokens[{i}].id is missing; each added token needs a non-negative id.", $"added_tokens[{i}].id"),
        RequiredString(t, "content", $"added_tokens[{i}]"),
        Bool(t, "single_word", false), Bool(t, "lstrip", false), Bool(t, "rstrip", false), Bool(t, "normalized", false), Bool(t, "special", false))));

    public IEnumerable<AddedToken> All => _byId.Values;

    public AddedToken? ById(int id) => _byId.GetValueOrDefault(id);

    public AddedToken? ByContent(string content) => _byContent.GetValueOrDefault(content);

    public bool HasNormalized => _normalized.Count > 0;

    private static Dictionary<char, AddedToken[]> ByFirstChar(IEnumerable<AddedToken> tokens) =>
        tokens.GroupBy(t => t.Content[0]).ToDictionary(g => g.Key, g => g.ToArray());

    /// <summary>Cuts text into (start, end, token) spans; token is null for the text between added tokens.</summary>
    public List<(int Start, int End, AddedToken? Token)> Split(string text, bool normalized)
    {
        var candidates = normalized ? _normalized : _raw;
        var spans = new List<(int, int, AddedToken?)>();
        var done = 0;
        for (var at = 0; candidates.Count > 0 && at < text.Length;)
        {
            var hit = LongestAt(text, at, candidates);
            if (hit is null) { at++; continue; }
            var (start, stop) = (at, at + hit.Content.Length);
            at = stop;
            if (hit.SingleWord && (start > 0 && IsWordChar(text[start - 1]) || stop < text.Length && IsWordChar(text[stop]))) continue;
            if (hit.LStrip) { while (start > done && char.IsWhiteSpace(text[start - 1])) start--; }
            if (hit.RStrip) { while (stop < text.Length && char.IsWhiteSpace(text[stop])) stop++; }
            if (done < start) spans.Add((done, start, null));
            spans.Add((start, stop, hit));
            done = stop;
            at = Math.Max(at, stop);
        }
        if (done < text.Length) spans.Add((done, text.Length, null));
        return spans;
    }

    private static AddedToken? LongestAt(string text, int at, Dictionary<char, AddedToken[]> candidates)
    {
        if (!candidates.TryGetValue(text[at], out var starting)) return null;
        foreach (var t in starting)
            if (string.CompareOrdinal(text, at, t.Content, 0, t.Content.Length) == 0 && at + t.Content.Length <= text.Length) return t;
        return null;
    }

    private static bool IsWordChar(char c) => char.IsLetterOrDigit(c) || c == '_';
}
