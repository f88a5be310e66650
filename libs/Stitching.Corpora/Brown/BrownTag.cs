namespace Stitching.Corpora.Brown;

/// <summary>
/// A Brown corpus tag as written after the slash: lower-case base tags joined by '+' for contractions
/// ("pps+bez" for "it's"), optionally prefixed "fw-" (foreign word) and suffixed "-tl" (in a title),
/// "-hl" (in a headline) or "-nc" (cited word); a trailing '*' marks negation ("bez*" for "isn't").
/// </summary>
public sealed record BrownTag(string Raw, IReadOnlyList<string> Parts, bool Foreign, bool Negated)
{
    private static readonly string[] Suffixes = ["-tl", "-hl", "-nc"];

    /// <summary>The first base tag with prefix and suffixes removed ("np-tl" -> "np", "pps+bez" -> "pps").</summary>
    public string Base => Parts[0];

    public static BrownTag Parse(string raw)
    {
        var foreign = raw.StartsWith("fw-", StringComparison.Ordinal);
        var negated = false;
        var parts = (foreign ? raw[3..] : raw).Split('+').Select(p =>
        {
            var stripped = true;
            while (stripped)
            {
                stripped = false;
                foreach (var s in Suffixes)
                    if (p.Length > s.Length && p.EndsWith(s, StringComparison.Ordinal)) { p = p[..^s.Length]; stripped = true; }
            }
            if (p.Length > 1 && p.EndsWith('*')) { p = p[..^1]; negated = true; }
            return p;
        }).ToArray();
        return new BrownTag(raw, parts, foreign, negated);
    }
}
