using Stitching.Contracts.Eval.V1;
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

    /// <summary>Maps the request's dataset, checking every field a client sets (names the field on error).</summary>
    public static ProbeSet FromRequest(ProbeDataset? d)
    {
        if (d is null) throw StitchingException.InvalidArgument("dataset", $"is required: name one of {string.Join(", ", Named)} or give examples.");
        if (d.Named.Length > 0 && d.Examples.Count > 0) throw StitchingException.InvalidArgument("dataset.named", "give a named set or examples, not both.");
        Check.InRange(d.ClassNames.Count, 0, MaxClasses, "dataset.class_names", "one name per class id");
        IReadOnlyList<int>? classes = d.Classes.Count > 0 ? d.Classes.ToArray() : null;
        if (d.Named.Length > 0)
        {
            var named = d.Named switch
            {
                "brown:pos" => BrownPos(BrownCorpus.Shared),
                "brown:genre" => BrownGenre(BrownCorpus.Shared),
                _ => throw StitchingException.InvalidArgument("dataset.named", $"'{Check.Shorten(d.Named)}' is not a named set; use {string.Join(" or ", Named)}."),
            };
            if (d.ClassNames.Count > 0) throw StitchingException.InvalidArgument("dataset.class_names", $"{d.Named} names its own classes ({string.Join(", ", named.ClassNames)}).");
            CheckClasses(classes, named.ClassNames.Count);
            return named with { Classes = classes };
        }
        if (d.Examples.Count == 0) throw StitchingException.InvalidArgument("dataset.examples", "give labelled texts or a named set.");
        Check.InRange(d.Examples.Count, 1, MaxTexts, "dataset.examples", "labelled texts");
        var tokenLevel = d.Examples[0].Spans.Count > 0;
        var texts = new List<ProbeText>(d.Examples.Count);
        var maxLabel = -1;
        for (var i = 0; i < d.Examples.Count; i++)
        {
            var e = d.Examples[i];
            var field = $"dataset.examples[{i}]";
            if (e.Text.Length == 0 || e.Text.Length > MaxTextChars) throw StitchingException.InvalidArgument($"{field}.text", $"must hold 1 to {MaxTextChars} characters.");
            var split = e.Split.Length == 0 ? (i % 5) switch { < 3 => Split.Train, 3 => Split.Validation, _ => Split.Test } : SplitOf(e.Split, $"{field}.split");
            if (tokenLevel)
            {
                if (e.Spans.Count == 0) throw StitchingException.InvalidArgument($"{field}.spans", "every example needs spans when the first has them (token-level set).");
                if (e.Label != -1 && e.Label != 0) throw StitchingException.InvalidArgument($"{field}.label", "a token-level example takes its labels from spans; leave label at -1 or 0.");
                var spans = new List<LabelledSpan>(e.Spans.Count);
                for (var j = 0; j < e.Spans.Count; j++)
                {
                    var s = e.Spans[j];
                    if (s.Start < 0 || s.End <= s.Start || s.End > e.Text.Length)
                        throw StitchingException.InvalidArgument($"{field}.spans[{j}]", $"[{s.Start}, {s.End}) must be a non-empty range inside the text (length {e.Text.Length}).");
                    Check.InRange(s.Label, 0, MaxClasses - 1, $"{field}.spans[{j}].label", "a class id");
                    spans.Add(new LabelledSpan(s.Start, s.End, s.Label));
                    maxLabel = Math.Max(maxLabel, s.Label);
                }
                if (SpanLabels.Overlap(spans) is var o and >= 0) throw StitchingException.InvalidArgument($"{field}.spans[{o}]", "overlaps another span; spans must not overlap.");
                texts.Add(new ProbeText(e.Text, -1, spans, split));
            }
            else
            {
                if (e.Spans.Count > 0) throw StitchingException.InvalidArgument($"{field}.spans", "the first example has no spans (document-level set); give spans on every example or none.");
                Check.InRange(e.Label, 0, MaxClasses - 1, $"{field}.label", "a class id");
                maxLabel = Math.Max(maxLabel, e.Label);
                texts.Add(new ProbeText(e.Text, e.Label, [], split));
            }
        }
        var count = Math.Max(maxLabel + 1, d.ClassNames.Count);
        if (count < 2) throw StitchingException.InvalidArgument("dataset.examples", "the labels name one class; a probe needs two or more.");
        var names = Enumerable.Range(0, count).Select(c => c < d.ClassNames.Count ? d.ClassNames[c] : c.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        CheckClasses(classes, count);
        return new ProbeSet("examples", tokenLevel, texts, names, classes);
    }

    private static void CheckClasses(IReadOnlyList<int>? classes, int count)
    {
        if (classes is null) return;
        for (var i = 0; i < classes.Count; i++) Check.InRange(classes[i], 0, count - 1, $"dataset.classes[{i}]", "a class id of the set");
        if (classes.Distinct().Count() != classes.Count) throw StitchingException.InvalidArgument("dataset.classes", "lists a class twice.");
    }

    private static Split SplitOf(string name, string field) => name switch
    {
        "train" => Split.Train,
        "validation" => Split.Validation,
        "test" => Split.Test,
        _ => throw StitchingException.InvalidArgument(field, $"'{Check.Shorten(name)}' is not a split; use train, validation or test."),
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
