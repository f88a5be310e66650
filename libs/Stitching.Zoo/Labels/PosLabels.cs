using Stitching.Models.Tokenization;
using Stitching.Corpora.Brown;

namespace Stitching.Zoo.Labels;

/// <summary>One held-out sentence with its words and tokens, each token labelled with a universal POS class id.</summary>
public sealed record PosSentence(string Doc, string Split, int Sentence, string Text, int[] Tokens, int[][] Offsets,
                                 int[] Labels, int[][] WordSpans, string[] WordTags);

/// <summary>
/// Token-level universal POS labels (the structural labelled set). A sentence is encoded on its own; a
/// token takes the class of the word its first non-space character falls in (byte-level tokens start
/// with the space before a word), or -1 when it covers no word.
/// </summary>
public static class PosLabels
{
    public static PosSentence Label(BrownDocument doc, string split, int index, HfTokenizer tokenizer)
    {
        var rendered = DocumentText.OfSentence(doc.Sentences[index].Words);
        var enc = tokenizer.Encode(rendered.Text, addSpecialTokens: false);
        var labels = new int[enc.Count];
        for (var t = 0; t < enc.Count; t++)
        {
            var (start, end) = enc.Offsets[t];
            while (start < end && char.IsWhiteSpace(rendered.Text[start])) start++;
            var word = rendered.Words.FirstOrDefault(w => start >= w.Start && start < w.End);
            labels[t] = word is null ? -1 : UniversalPos.Id(UniversalPos.Of(word.Source.Tag));
        }
        return new PosSentence(doc.Id, split, index, rendered.Text, enc.Ids.ToArray(), enc.Offsets.Select(o => new[] { o.Start, o.End }).ToArray(),
            labels, rendered.Words.Select(w => new[] { w.Start, w.End }).ToArray(), rendered.Words.Select(w => w.Source.Tag.Raw).ToArray());
    }
}
