using Stitching.Zoo.Brown;

namespace Stitching.Activations.Extraction;

/// <summary>
/// The Brown corpus splits as named corpora: "brown:train", "brown:validation", "brown:test" (documents as
/// plain text, in file order; the zoo's fixed document-level split). The corpus is read on first use.
/// </summary>
public sealed class BrownNamedCorpus : INamedCorpus
{
    public IReadOnlyList<string> Names { get; } = ["brown:train", "brown:validation", "brown:test"];

    public IEnumerable<string> Documents(string name) =>
        BrownSplit.Documents(BrownCorpus.Shared, BrownSplit.Parse(name["brown:".Length..])).Select(d => d.Render().Text);

    public string Version(string name) => $"{BrownCorpus.PackageVersion}:{name}:split-v1";
}
