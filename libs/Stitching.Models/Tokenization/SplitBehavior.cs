namespace Stitching.Models.Tokenization;

/// <summary>What to do with the delimiters a split pattern finds (tokenizer.json "behavior").</summary>
internal enum SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous }

/// <summary>Cuts a <see cref="NormalizedText"/> at the matches of a pattern, as Hugging Face's NormalizedString::split does.</summary>
internal static class PatternSplitter
{
    public static SplitBehavior ParseBehavior(string? value, string field) => value switch
    {
        "Removed" => SplitBehavior.Removed,
        "Isolated" => SplitBehavior.Isolated,
        "MergedWithPrevious" => SplitBehavior.MergedWithPrevious,
        "MergedWithNext" => SplitBehavior.MergedWithNext,
        "Contiguous" => SplitBehavior.Contiguous,
        _ => throw Stitching.Core.Errors.StitchingException.FailedPrecondition(
            $"{field} '{value}' is not supported; use one of Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous.", field),
    };

    /// <summary>Splits the text; regex matches are delimiters unless invert, where they are the kept pieces.</summary>
    public static IEnumerable<NormalizedText> Split(NormalizedText text, System.Text.RegularExpressions.Regex pattern, SplitBehavior behavior, bool invert = false)
    {
        var marked = Mark(text.Text, pattern, invert);
        foreach (var (s, e, delimiter) in Apply(marked, behavior))
            if (!delimiter && e > s) yield return text.Slice(s, e);
    }

    private static List<(int Start, int End, bool Match)> Mark(string text, System.Text.RegularExpressions.Regex pattern, bool invert)
    {
        var marked = new List<(int, int, bool)>();
        if (text.Length == 0) return marked;
        var prev = 0;
        for (var m = pattern.Match(text); m.Success; m = m.NextMatch())
        {
            if (prev != m.Index) marked.Add((prev, m.Index, invert));
            marked.Add((m.Index, m.Index + m.Length, !invert));
            prev = m.Index + m.Length;
        }
        if (prev != text.Length) marked.Add((prev, text.Length, invert));
        return marked;
    }

    /// <summary>Returns spans with a flag saying whether the span is dropped.</summary>
    private static List<(int Start, int End, bool Drop)> Apply(List<(int Start, int End, bool Match)> marked, SplitBehavior behavior)
    {
        var result = new List<(int Start, int End, bool Drop)>(marked.Count);
        switch (behavior)
        {
            case SplitBehavior.Removed:
                foreach (var (s, e, m) in marked) result.Add((s, e, m));
                break;
            case SplitBehavior.Isolated:
                foreach (var (s, e, _) in marked) result.Add((s, e, false));
                break;
            case SplitBehavior.MergedWithPrevious:
                Merge(marked, result, (m, previous) => m && !previous, extendEnd: true);
                break;
            case SplitBehavior.Contiguous:
                Merge(marked, result, (m, previous) => m == previous, extendEnd: true);
                break;
            case SplitBehavior.MergedWithNext:
                var reversed = new List<(int Start, int End, bool Match)>(marked);
                reversed.Reverse();
                Merge(reversed, result, (m, previous) => m && !previous, extendEnd: false);
                result.Reverse();
                break;
        }
        return result;
    }

    private static void Merge(List<(int Start, int End, bool Match)> marked, List<(int Start, int End, bool Drop)> result,
        Func<bool, bool, bool> joins, bool extendEnd)
    {
        var previous = false;
        foreach (var (s, e, m) in marked)
        {
            if (joins(m, previous) && result.Count > 0)
            {
                var last = result[^1];
                result[^1] = extendEnd ? (last.Start, e, false) : (s, last.End, false);
            }
            else result.Add((s, e, false));
            previous = m;
        }
    }
}
