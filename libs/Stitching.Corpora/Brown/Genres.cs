namespace Stitching.Corpora.Brown;

/// <summary>The 15 Brown genres, keyed by the second letter of a file name (ca01 is press reportage).</summary>
public static class Genres
{
    public static readonly IReadOnlyList<(char Code, string Name)> All =
    [
        ('a', "press: reportage"), ('b', "press: editorial"), ('c', "press: reviews"), ('d', "religion"),
        ('e', "skills and hobbies"), ('f', "popular lore"), ('g', "belles lettres"), ('h', "miscellaneous: government and house organs"),
        ('j', "learned"), ('k', "fiction: general"), ('l', "fiction: mystery"), ('m', "fiction: science"),
        ('n', "fiction: adventure"), ('p', "fiction: romance"), ('r', "humor"),
    ];

    /// <summary>Label id of a genre code (0..14).</summary>
    public static int Id(char code)
    {
        for (var i = 0; i < All.Count; i++) if (All[i].Code == code) return i;
        throw new ArgumentOutOfRangeException(nameof(code), code, "not a Brown genre code (a..r without i, o, q)");
    }
}
