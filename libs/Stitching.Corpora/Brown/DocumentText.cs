namespace Stitching.Corpora.Brown;

/// <summary>Where one corpus word landed in rendered text.</summary>
public sealed record WordSpan(int Sentence, int Word, int Start, int End, BrownWord Source);

/// <summary>
/// Plain text made from tagged words, keeping each word's span: `` and '' become a double quote, no space
/// before closing punctuation or after an opening quote or bracket, sentences joined by a space and
/// paragraphs (indented corpus lines) by a newline.
/// </summary>
public sealed record DocumentText(string Text, IReadOnlyList<WordSpan> Words)
{
    private static readonly HashSet<string> NoSpaceBefore = [",", ".", ":", ";", "?", "!", ")", "''", "'"];
    private static readonly HashSet<string> NoSpaceAfter = ["``", "("];

    /// <summary>The surface form of a corpus word.</summary>
    public static string Surface(string word) => word is "``" or "''" ? "\"" : word;

    public static DocumentText Of(BrownDocument doc)
    {
        var sb = new System.Text.StringBuilder();
        var spans = new List<WordSpan>();
        for (var s = 0; s < doc.Sentences.Count; s++)
        {
            var sentence = doc.Sentences[s];
            if (s > 0) sb.Append(sentence.StartsParagraph ? '\n' : ' ');
            AppendSentence(sb, sentence, (w, start, end) => spans.Add(new WordSpan(s, w, start, end, sentence.Words[w])));
        }
        return new DocumentText(sb.ToString(), spans);
    }

    /// <summary>One sentence rendered on its own (word spans relative to its start).</summary>
    public static DocumentText OfSentence(IReadOnlyList<BrownWord> words)
    {
        var sb = new System.Text.StringBuilder();
        var spans = new List<WordSpan>();
        AppendSentence(sb, new BrownSentence(words, false), (w, start, end) => spans.Add(new WordSpan(0, w, start, end, words[w])));
        return new DocumentText(sb.ToString(), spans);
    }

    private static void AppendSentence(System.Text.StringBuilder sb, BrownSentence sentence, Action<int, int, int> onWord)
    {
        var lineStart = sb.Length;
        for (var w = 0; w < sentence.Words.Count; w++)
        {
            var word = sentence.Words[w].Text;
            var glue = sb.Length == lineStart || NoSpaceBefore.Contains(word) || w > 0 && NoSpaceAfter.Contains(sentence.Words[w - 1].Text);
            if (!glue) sb.Append(' ');
            var start = sb.Length;
            sb.Append(Surface(word));
            onWord(w, start, sb.Length);
        }
    }
}
