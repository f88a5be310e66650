using Stitching.Core.Errors;
using Stitching.Core.Text;
using Stitching.Corpora.Brown;

namespace Stitching.Eval.Probes;

/// <summary>One labelled text of a probe dataset: a document-level label (>= 0) or token-level spans, and its split.</summary>
public sealed record ProbeText(string Text, int Label, IReadOnlyList<LabelledSpan> Spans, Split Split);

/// <summary>A probe dataset in domain form: texts, class names, the classes that get a one-vs-rest task.</summary>
public sealed record ProbeSet(string Name, bool TokenLevel, IReadOnlyList<ProbeText> Texts, IReadOnlyList<string> ClassNames, IReadOnlyList<int>? Classes)
{
    public const int MaxTexts = 1 << 16, MaxTextChars = 1 << 20, MaxClasses = 256;

    /// <summary>The named sets: brown:pos (token level) and brown:genre (document level).</summary>
    public static readonly IReadOnlyList<string> Named = ["brown:pos", "brown:genre"];

    /// <summary>Brown's top-level division of its 15 genres: informative prose (A-J) and imaginative prose (K-R).</summary>
    public static readonly IReadOnlyList<string> GenreClasses = ["informative", "imaginative"];

    /// <summary>A named set by name (the edge checks the name first).</summary>
    public static ProbeSet OfName(string name) => name switch
    {
        "brown:pos" => BrownPos(BrownCorpus.Shared),
        "brown:genre" => BrownGenre(BrownCorpus.Shared),
        _ => throw StitchingException.InvalidArgument("dataset.named", $"'{Check.Shorten(name)}' is not a named set; use {string.Join(" or ", Named)}."),
    };

    /// <summary>Every Brown document with each word labelled by its universal POS class, on the fixed document split.</summary>
    public static ProbeSet BrownPos(BrownCorpus corpus) => new("brown:pos", true,
        corpus.Documents.Select(d =>
        {
            var rendered = d.Render();
            var spans = rendered.Words.Select(w => new LabelledSpan(w.Start, w.End, UniversalPos.Id(UniversalPos.Of(w.Source.Tag)))).ToList();
            return new ProbeText(rendered.Text, -1, spans, BrownSplit.Of(d, corpus.Documents));
        }).ToList(), UniversalPos.Classes, null);

    /// <summary>Every Brown document labelled informative (genres A-J, 0) or imaginative (K-R, 1), on the fixed split.</summary>
    public static ProbeSet BrownGenre(BrownCorpus corpus) => new("brown:genre", false,
        corpus.Documents.Select(d => new ProbeText(d.Render().Text, d.Genre >= 'k' ? 1 : 0, [], BrownSplit.Of(d, corpus.Documents))).ToList(),
        GenreClasses, null);
}
