using Stitching.Corpora.Brown;

namespace Stitching.Activations.Extraction;

/// <summary>
/// The Brown corpus splits as named corpora: "brown:train", "brown:validation", "brown:test" (documents as
/// plain text; the zoo's fixed document-level split). Documents are interleaved across genres (round robin
/// over the genres, each genre's documents in file order), so any prefix of a split, such as the first
/// N tokens an extraction takes, represents every genre rather than the first few. Read on first use.
/// </summary>
public sealed class BrownNamedCorpus : INamedCorpus
{
    public IReadOnlyList<string> Names { get; } = ["brown:train", "brown:validation", "brown:test"];

    public IEnumerable<string> Documents(string name) =>
        Interleaved(BrownSplit.Documents(BrownCorpus.Shared, BrownSplit.Parse(name["brown:".Length..]))).Select(d => d.Render().Text);

    public string Version(string name) => $"{BrownCorpus.PackageVersion}:{name}:split-v1:interleaved";

    /// <summary>Round robin over genres (in genre order): the first document of each genre, then the second, ...</summary>
    public static IEnumerable<BrownDocument> Interleaved(IReadOnlyList<BrownDocument> documents)
    {
        var byGenre = documents.GroupBy(d => d.Genre).OrderBy(g => g.Key).Select(g => g.ToList()).ToList();
        for (var i = 0; byGenre.Any(g => i < g.Count); i++)
            foreach (var g in byGenre)
                if (i < g.Count) yield return g[i];
    }
}
