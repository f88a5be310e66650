namespace Stitching.Corpora.Brown;

/// <summary>
/// The twelve universal part-of-speech classes of Petrov, Das and McDonald (2012) and the mapping from
/// Brown tags to them. The class of a tag is the class of its first base tag (a contraction "it's",
/// pps+bez, counts as PRON); foreign words ("fw-...") are X.
/// </summary>
public static class UniversalPos
{
    /// <summary>The classes in label-id order.</summary>
    public static readonly IReadOnlyList<string> Classes = ["NOUN", "VERB", "ADJ", "ADV", "PRON", "DET", "ADP", "NUM", "CONJ", "PRT", ".", "X"];

    /// <summary>Open-class content words, the ones a syntax-preserving rewrite replaces.</summary>
    public static readonly IReadOnlySet<string> Content = new HashSet<string> { "NOUN", "VERB", "ADJ", "ADV" };

    private static readonly Dictionary<string, string> Map = Build();

    private static Dictionary<string, string> Build()
    {
        var m = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string cls, params string[] tags) { foreach (var t in tags) m[t] = cls; }
        Add("NOUN", "nn", "nn$", "nns", "nns$", "np", "np$", "nps", "nps$", "nr", "nr$", "nrs");
        // be / do / have forms and modals are verbs in the universal set.
        Add("VERB", "vb", "vbd", "vbg", "vbn", "vbz", "be", "bed", "bedz", "beg", "bem", "ben", "ber", "bez",
            "do", "dod", "doz", "hv", "hvd", "hvg", "hvn", "hvz", "md");
        Add("ADJ", "jj", "jj$", "jjr", "jjs", "jjt", "od");
        Add("ADV", "rb", "rb$", "rbr", "rbt", "rn", "ql", "qlp", "wrb", "wql", "abl", "*");
        Add("PRON", "pn", "pn$", "pp$", "pp$$", "ppl", "ppls", "ppo", "pps", "ppss", "wp$", "wpo", "wps");
        Add("DET", "at", "ap", "ap$", "abn", "abx", "dt", "dt$", "dti", "dts", "dtx", "wdt", "ex");
        Add("ADP", "in");
        Add("NUM", "cd", "cd$");
        Add("CONJ", "cc", "cs");
        Add("PRT", "to", "rp");
        Add(".", ".", ",", ":", ";", "(", ")", "--", "'", "''", "``", "'", "?", "!");
        Add("X", "uh", "nil", "fw");
        return m;
    }

    /// <summary>The universal class of a Brown tag (X for a tag outside the tag set).</summary>
    public static string Of(BrownTag tag) => tag.Foreign ? "X" : Map.GetValueOrDefault(tag.Base, "X");

    /// <summary>Whether the mapping knows the base tag (tests use it to find unmapped tags).</summary>
    public static bool Knows(string baseTag) => Map.ContainsKey(baseTag);

    public static int Id(string cls) => Classes.IndexOf(cls) is var i and >= 0 ? i
        : throw new ArgumentOutOfRangeException(nameof(cls), cls, "not a universal POS class");

    private static int IndexOf(this IReadOnlyList<string> list, string value)
    {
        for (var i = 0; i < list.Count; i++) if (list[i] == value) return i;
        return -1;
    }
}
