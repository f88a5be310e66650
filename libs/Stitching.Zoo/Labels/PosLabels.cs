using Stitching.Core.Text;
using Stitching.Models.Tokenization;
using Stitching.Corpora.Brown;

namespace Stitching.Zoo.Labels;

/// <summary>One held-out sentence with its words and tokens, each token labelled with a universal POS class id.</summary>
public sealed record PosSentence(string Doc, string Split, int Sentence, string Text, int[] Tokens, int[][] Offsets,
                                 int[] Labels, int[][] WordSpans, string[] WordTags);

/// <summary>
/// Token-level universal POS labels (the structural labelled set). A sentence is encoded on its own; a
/// token takes the class of its word by <see cref="SpanLabels"/> (-1 when it covers no word).
/// </summary>
public static class PosLabels
{
    public static PosSentence Label(BrownDocument doc, string split, int index, HfTokenizer tokenizer)
    {
        var rendered = DocumentText.OfSentence(doc.Sentences[index].Words);
        var enc = tokenizer.Encode(rendered.Text, addSpecialTokens: false);
        var spans = rendered.Words.Select(w => new LabelledSpan(w.Start, w.End, UniversalPos.Id(UniversalPos.Of(w.Source.Tag)))).ToList();
        var labels = SpanLabels.Assign(rendered.Text, enc.Offsets, spans);
        return new PosSentence(doc.Id, split, index, rendered.Text, enc.Ids.ToArray(), enc.Offsets.Select(o => new[] { o.Start, o.End }).ToArray(),
            labels, rendered.Words.Select(w => new[] { w.Start, w.End }).ToArray(), rendered.Words.Select(w => w.Source.Tag.Raw).ToArray());
    }
}
