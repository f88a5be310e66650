namespace Stitching.Corpora.Brown;

/// <summary>A held-out sentence and rewrites that keep its syntax: the word indices replaced and each rewrite's text.</summary>
public sealed record RewriteSet(string Doc, int Sentence, string Original, int[] Replaced, string[] Rewrites);

/// <summary>
/// Syntax-preserving rewrites (the semantic-vs-structural split): every content word (NOUN, VERB, ADJ, ADV
/// with a simple, non-contracted tag) is replaced by a word drawn uniformly from the training split's words
/// with the very same Brown tag, so the tag sequence is unchanged and the meaning is scrambled.
/// Capitalisation of the first letter is kept. Deterministic for a seed.
/// </summary>
public sealed class Rewrites
{
    private readonly Dictionary<string, string[]> _byTag;
    private readonly Random _random;

    public Rewrites(IEnumerable<BrownDocument> training, int seed)
    {
        _byTag = training.SelectMany(d => d.Sentences).SelectMany(s => s.Words).Where(Replaceable)
            .GroupBy(w => w.Tag.Raw, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.Select(w => w.Text.ToLowerInvariant()).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToArray(), StringComparer.Ordinal);
        _random = new Random(seed);
    }

    /// <summary>A content word with a simple tag, made of letters (and inner hyphens or apostrophes).</summary>
    public static bool Replaceable(BrownWord w) =>
        w.Tag.Parts.Count == 1 && !w.Tag.Foreign && UniversalPos.Content.Contains(UniversalPos.Of(w.Tag))
        && w.Text.Length > 0 && char.IsLetter(w.Text[0]) && w.Text.All(c => char.IsLetter(c) || c is '-' or '\'');

    public RewriteSet Rewrite(BrownDocument doc, int sentence, int count)
    {
        var words = doc.Sentences[sentence].Words;
        var replaced = Enumerable.Range(0, words.Count).Where(i => Replaceable(words[i]) && _byTag.ContainsKey(words[i].Tag.Raw)).ToArray();
        var rewrites = new string[count];
        for (var r = 0; r < count; r++)
        {
            var copy = words.ToArray();
            foreach (var i in replaced)
            {
                var pool = _byTag[words[i].Tag.Raw];
                var pick = pool[_random.Next(pool.Length)];
                if (char.IsUpper(words[i].Text[0])) pick = char.ToUpperInvariant(pick[0]) + pick[1..];
                copy[i] = words[i] with { Text = pick };
            }
            rewrites[r] = DocumentText.OfSentence(copy).Text;
        }
        return new RewriteSet(doc.Id, sentence, DocumentText.OfSentence(words).Text, replaced, rewrites);
    }
}
