using System.Text.Json;
using System.Text.RegularExpressions;
using static Stitching.Models.Tokenization.TokenizerJson;

namespace Stitching.Models.Tokenization;

/// <summary>A tokenizer.json pre-tokenizer: splits a piece into words (and may rewrite them).</summary>
internal interface IPreTokenizer
{
    IEnumerable<NormalizedText> Split(NormalizedText text);
}

/// <summary>Builds pre-tokenizers from tokenizer.json (Sequence, ByteLevel, Split, Metaspace).</summary>
internal static class PreTokenizers
{
    /// <summary>GPT-2's word regex, as Hugging Face's ByteLevel uses it.</summary>
    public const string Gpt2Pattern = @"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+";

    public static readonly Regex Gpt2Regex = new(Gpt2Pattern, RegexOptions.Compiled | RegexOptions.CultureInvariant);

    public static IPreTokenizer? Parse(JsonElement? e, string field = "pre_tokenizer")
    {
        if (e is not { } p || IsNull(p)) return null;
        var type = Type(p, field);
        return type switch
        {
            "Sequence" => new SequencePreTokenizer(Array(p, "pretokenizers").Select((c, i) => Parse(c, $"{field}.pretokenizers[{i}]")!).ToArray()),
            "ByteLevel" => new ByteLevelPreTokenizer(Bool(p, "add_prefix_space", true), Bool(p, "use_regex", true)),
            "Split" => new SplitPreTokenizer(Pattern(p, field), PatternSplitter.ParseBehavior(String(p, "behavior"), $"{field}.behavior"), Bool(p, "invert", false)),
            "Metaspace" => Metaspace.Parse(p, field),
            _ => throw Unsupported(field, type, "Sequence, ByteLevel, Split, Metaspace"),
        };
    }

    private sealed class SequencePreTokenizer(IPreTokenizer[] steps) : IPreTokenizer
    {
        public IEnumerable<NormalizedText> Split(NormalizedText text) =>
            steps.Aggregate<IPreTokenizer, IEnumerable<NormalizedText>>([text], (pieces, step) => pieces.SelectMany(step.Split));
    }

    private sealed class ByteLevelPreTokenizer(bool addPrefixSpace, bool useRegex) : IPreTokenizer
    {
        public IEnumerable<NormalizedText> Split(NormalizedText text)
        {
            if (addPrefixSpace && !text.Text.StartsWith(' ')) text = text.Prepend(" ");
            var words = useRegex ? PatternSplitter.Split(text, Gpt2Regex, SplitBehavior.Isolated) : [text];
            return words.Select(w => w.ToByteLevel());
        }
    }

    private sealed class SplitPreTokenizer(Regex pattern, SplitBehavior behavior, bool invert) : IPreTokenizer
    {
        public IEnumerable<NormalizedText> Split(NormalizedText text) => PatternSplitter.Split(text, pattern, behavior, invert);
    }
}
