using System.Text.Json;
using System.Text.RegularExpressions;
using static Stitching.Models.Tokenization.TokenizerJson;

namespace Stitching.Models.Tokenization;

/// <summary>When Metaspace puts the replacement character in front of a piece.</summary>
internal enum PrependScheme { Always, First, Never }

/// <summary>SentencePiece-style Metaspace: spaces become ▁, a ▁ is prepended, words split before each ▁.</summary>
internal sealed class Metaspace(char replacement, PrependScheme scheme, bool split) : IPreTokenizer, IDecoder
{
    private readonly Regex _replacement = new(Regex.Escape(replacement.ToString()), RegexOptions.CultureInvariant);

    public static Metaspace Parse(JsonElement e, string field)
    {
        var replacement = String(e, "replacement") ?? "\u2581";
        if (replacement.Length != 1)
            throw Stitching.Core.Errors.StitchingException.FailedPrecondition($"{field}.replacement must be one character; fix the tokenizer.json.", $"{field}.replacement");
        // Older files carry add_prefix_space instead of prepend_scheme.
        var scheme = String(e, "prepend_scheme") switch
        {
            "always" => PrependScheme.Always,
            "first" => PrependScheme.First,
            "never" => PrependScheme.Never,
            null => Bool(e, "add_prefix_space", true) ? PrependScheme.Always : PrependScheme.Never,
            var other => throw Stitching.Core.Errors.StitchingException.FailedPrecondition(
                $"{field}.prepend_scheme '{other}' is not supported; use always, first or never.", $"{field}.prepend_scheme"),
        };
        return new Metaspace(replacement[0], scheme, Bool(e, "split", true));
    }

    public IEnumerable<NormalizedText> Split(NormalizedText text)
    {
        text = text.Replace(Spaces(text.Text), replacement.ToString());
        var prepend = scheme == PrependScheme.Always || (scheme == PrependScheme.First && text.Length > 0 && text.Starts[0] == 0);
        if (prepend && !text.Text.StartsWith(replacement)) text = text.Prepend(replacement.ToString());
        return split ? PatternSplitter.Split(text, _replacement, SplitBehavior.MergedWithNext) : [text];
    }

    private static IEnumerable<(int, int)> Spaces(string s)
    {
        for (var i = 0; i < s.Length; i++) if (s[i] == ' ') yield return (i, i + 1);
    }

    public List<string> Decode(List<string> tokens) =>
        tokens.Select((t, i) => string.Concat(t.Select(c => c != replacement ? c.ToString() : i == 0 && scheme != PrependScheme.Never ? "" : " "))).ToList();
}
