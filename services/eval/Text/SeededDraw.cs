namespace Stitching.Eval.Text;

/// <summary>
/// The seeded orders every evaluation draws with: items ordered by SplitMix64(seed ^ key), keys made from an
/// item's place in its source (text index, row index...), so a draw is the same in every process and for two
/// models that tokenize alike.
/// </summary>
public static class SeededDraw
{
    /// <summary>The SplitMix64 finaliser.</summary>
    public static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ z >> 27) * 0x94D049BB133111EBUL;
        return z ^ z >> 31;
    }

    /// <summary>Row key of chunk <paramref name="chunk"/> of text <paramref name="text"/>.</summary>
    public static ulong Key(int text, int chunk) => (ulong)text << 20 | (uint)chunk;

    /// <summary>Items in seeded order, kept while their token counts fit the budget (an item too long for what is left is skipped).</summary>
    public static List<T> WithinBudget<T>(IEnumerable<T> items, Func<T, ulong> key, Func<T, int> tokens, long budget, ulong seed)
    {
        var chosen = new List<T>();
        foreach (var item in items.OrderBy(i => Mix(seed ^ key(i))))
        {
            var n = tokens(item);
            if (n > budget) continue;
            chosen.Add(item);
            budget -= n;
        }
        return chosen;
    }
}
