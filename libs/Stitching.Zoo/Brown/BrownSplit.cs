namespace Stitching.Zoo.Brown;

/// <summary>The three document-level splits.</summary>
public enum Split { Train, Validation, Test }

/// <summary>
/// The fixed document-level split, stratified by genre: within each genre, documents in file order
/// 0,1,..; positions 8 and 9 of every ten go to validation and test (400 / 50 / 50 documents).
/// </summary>
public static class BrownSplit
{
    public static Split Of(BrownDocument doc, IReadOnlyList<BrownDocument> all)
    {
        var rank = all.Where(d => d.Genre == doc.Genre).TakeWhile(d => d.Id != doc.Id).Count();
        return (rank % 10) switch { 8 => Split.Validation, 9 => Split.Test, _ => Split.Train };
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
