using System.Text.Json;
using System.Text.RegularExpressions;
using static Stitching.Models.Tokenization.TokenizerJson;

namespace Stitching.Models.Tokenization;

/// <summary>A tokenizer.json normalizer: rewrites a piece of text, keeping alignments.</summary>
internal interface INormalizer
{
    NormalizedText Normalize(NormalizedText text);
}

/// <summary>Builds normalizers from tokenizer.json (Sequence, Prepend, Replace).</summary>
internal static class Normalizers
{
    public static INormalizer? Parse(JsonElement? e, string field = "normalizer")
    {
        if (e is not { } n || IsNull(n)) return null;
        var type = Type(n, field);
        return type switch
        {
            "Sequence" => new SequenceNormalizer(Array(n, "normalizers").Select((c, i) => Parse(c, $"{field}.normalizers[{i}]")!).ToArray()),
            "Prepend" => new PrependNormalizer(RequiredString(n, "prepend", field)),
            "Replace" => new ReplaceNormalizer(Pattern(n, field), RequiredString(n, "content", field)),
            _ => throw Unsupported(field, type, "Sequence, Prepend, Replace"),
        };
    }

    private sealed class SequenceNormalizer(INormalizer[] steps) : INormalizer
    {
        public NormalizedText Normalize(NormalizedText text) => steps.Aggregate(text, (t, s) => s.Normalize(t));
    }

    private sealed class PrependNormalizer(string prefix) : INormalizer
    {
        public NormalizedText Normalize(NormalizedText text) => text.Prepend(prefix);
    }

    private sealed class ReplaceNormalizer(Regex pattern, string content) : INormalizer
    {
        public NormalizedText Normalize(NormalizedText text) =>
            text.Replace(pattern.Matches(text.Text).Select(m => (m.Index, m.Index + m.Length)), content);
    }
}
