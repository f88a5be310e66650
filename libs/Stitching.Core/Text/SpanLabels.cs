namespace Stitching.Core.Text;

/// <summary>A labelled character span [Start, End) of a text.</summary>
public readonly record struct LabelledSpan(int Start, int End, int Label);

/// <summary>
/// Token labels from character spans, the one rule every token-level labelled set uses: a token takes the
/// label of the span its first non-space character falls in (byte-level tokens start with the space before
/// a word), or -1 when it starts in no span (or covers only whitespace). Spans must not overlap
/// (<see cref="Overlap"/> finds the first pair that does).
/// </summary>
public static class SpanLabels
{
    public static int[] Assign(string text, IReadOnlyList<(int Start, int End)> offsets, IReadOnlyList<LabelledSpan> spans)
    {
        var sorted = spans.OrderBy(s => s.Start).ToArray();
        var starts = sorted.Select(s => s.Start).ToArray();
        var labels = new int[offsets.Count];
        for (var t = 0; t < offsets.Count; t++)
        {
            var (start, end) = offsets[t];
            while (start < end && start < text.Length && char.IsWhiteSpace(text[start])) start++;
            labels[t] = -1;
            if (start >= end) continue;
            var i = Array.BinarySearch(starts, start);
            if (i < 0) i = ~i - 1; // the last span starting before it
            if (i >= 0 && start < sorted[i].End) labels[t] = sorted[i].Label;
        }
        return labels;
    }

    /// <summary>Index of the first span (in start order) that overlaps the one before it, or -1.</summary>
    public static int Overlap(IReadOnlyList<LabelledSpan> spans)
    {
        var order = Enumerable.Range(0, spans.Count).OrderBy(i => spans[i].Start).ToArray();
        for (var j = 1; j < order.Length; j++)
            if (spans[order[j]].Start < spans[order[j - 1]].End) return order[j];
        return -1;
    }
}
