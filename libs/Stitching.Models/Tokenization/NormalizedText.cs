namespace Stitching.Models.Tokenization;

/// <summary>
/// A piece of text being normalized and split, with the original UTF-16 span [Starts[i], Ends[i]) that each of
/// its characters came from, so tokens can report offsets in the caller's text.
/// </summary>
internal sealed class NormalizedText(string text, int[] starts, int[] ends)
{
    public string Text { get; } = text;
    public int[] Starts { get; } = starts;
    public int[] Ends { get; } = ends;
    public int Length => Text.Length;

    public static NormalizedText FromOriginal(string original, int start, int end)
    {
        var n = end - start;
        var starts = new int[n];
        var ends = new int[n];
        for (var i = 0; i < n; i++)
        {
            // A surrogate pair maps to the whole code point.
            var cp = start + i;
            var pairStart = char.IsLowSurrogate(original[cp]) && cp > start && char.IsHighSurrogate(original[cp - 1]) ? cp - 1 : cp;
            var pairEnd = char.IsHighSurrogate(original[cp]) && cp + 1 < end && char.IsLowSurrogate(original[cp + 1]) ? cp + 2 : cp + 1;
            starts[i] = pairStart;
            ends[i] = pairEnd;
        }
        return new NormalizedText(original.Substring(start, n), starts, ends);
    }

    /// <summary>The original span of normalized characters [start, end).</summary>
    public (int Start, int End) Original(int start, int end) =>
        end > start ? (Starts[start], Ends[end - 1]) : start < Length ? (Starts[start], Starts[start]) : (Ends[^1], Ends[^1]);

    public NormalizedText Slice(int start, int end) => new(Text[start..end], Starts[start..end], Ends[start..end]);

    /// <summary>Inserts text in front; the new characters align with the first character.</summary>
    public NormalizedText Prepend(string prefix)
    {
        if (Length == 0) return this;
        var starts = new int[prefix.Length + Length];
        var ends = new int[starts.Length];
        Array.Fill(starts, Starts[0], 0, prefix.Length);
        Array.Fill(ends, Ends[0], 0, prefix.Length);
        Starts.CopyTo(starts, prefix.Length);
        Ends.CopyTo(ends, prefix.Length);
        return new NormalizedText(prefix + Text, starts, ends);
    }

    /// <summary>Replaces each non-empty (start, end) span with content; the new characters align with the span.</summary>
    public NormalizedText Replace(IEnumerable<(int Start, int End)> spans, string content)
    {
        var text = new System.Text.StringBuilder(Length);
        var starts = new List<int>(Length);
        var ends = new List<int>(Length);
        var at = 0;
        foreach (var (s, e) in spans)
        {
            if (e <= s) continue;
            Copy(at, s);
            var (os, oe) = Original(s, e);
            foreach (var c in content) { text.Append(c); starts.Add(os); ends.Add(oe); }
            at = e;
        }
        Copy(at, Length);
        return new NormalizedText(text.ToString(), starts.ToArray(), ends.ToArray());

        void Copy(int from, int to)
        {
            text.Append(Text, from, to - from);
            for (var i = from; i < to; i++) { starts.Add(Starts[i]); ends.Add(Ends[i]); }
        }
    }

    /// <summary>Maps each UTF-8 byte to its <see cref="ByteLevelAlphabet"/> character, each aligned with its source character.</summary>
    public NormalizedText ToByteLevel()
    {
        var text = new System.Text.StringBuilder(Length * 2);
        var starts = new List<int>(Length * 2);
        var ends = new List<int>(Length * 2);
        Span<byte> utf8 = stackalloc byte[4];
        for (var i = 0; i < Length;)
        {
            var width = char.IsHighSurrogate(Text[i]) && i + 1 < Length && char.IsLowSurrogate(Text[i + 1]) ? 2 : 1;
            var rune = width == 2 ? new System.Text.Rune(Text[i], Text[i + 1]) : System.Text.Rune.IsValid(Text[i]) ? new System.Text.Rune(Text[i]) : System.Text.Rune.ReplacementChar;
            var n = rune.EncodeToUtf8(utf8);
            var (os, oe) = Original(i, i + width);
            for (var b = 0; b < n; b++) { text.Append(ByteLevelAlphabet.ToChar(utf8[b])); starts.Add(os); ends.Add(oe); }
            i += width;
        }
        return new NormalizedText(text.ToString(), starts.ToArray(), ends.ToArray());
    }
}
