namespace Stitching.Corpora.Brown;

/// <summary>The three document-level splits.</summary>
public enum Split { Train, Validation, Test }

/// <summary>
/// The fixed document-level split, stratified by genre: within each genre of n documents in file order
/// 0..n-1, position i goes to test when i % 10 == 9 or i == n - 1, to validation when i % 10 == 8 or
/// i == n - 2, else to train, so every genre (the smallest has 6 documents) is in every split.
/// </summary>
public static class BrownSplit
{
    public static Split Of(BrownDocument doc, IReadOnlyList<BrownDocument> all)
    {
        var genre = all.Where(d => d.Genre == doc.Genre).ToList();
        var (i, n) = (genre.FindIndex(d => d.Id == doc.Id), genre.Count);
        if (i % 10 == 9 || i == n - 1) return Split.Test;
        return i % 10 == 8 || i == n - 2 ? Split.Validation : Split.Train;
    }

    public static IReadOnlyList<BrownDocument> Documents(BrownCorpus corpus, Split split) =>
        corpus.Documents.Where(d => Of(d, corpus.Documents) == split).ToList();

    public static string Name(Split split) => split switch { Split.Train => "train", Split.Validation => "validation", _ => "test" };

    public static Split Parse(string name) => name switch
    {
        "train" => Split.Train,
        "validation" => Split.Validation,
        "test" => Split.Test,
        _ => throw Stitching.Core.Errors.StitchingException.InvalidArgument("split", $"'{name}' is not a split; use train, validation or test."),
    };
}
