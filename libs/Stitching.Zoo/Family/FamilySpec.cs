using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Stitching.Core.Errors;
using Stitching.Corpora.Brown;
using Stitching.Zoo.Training;

namespace Stitching.Zoo.Family;

/// <summary>
/// A Pythia-style family: one tokenizer, one token order, several sizes. Every size trains on the same
/// token budget in the same window order. <see cref="Hash"/> identifies the spec (and the code's
/// format version), so a built model is reused until its spec changes.
/// </summary>
public sealed record FamilySpec(string Name, string Prefix, int VocabSize, int Context, TrainingSpec Training,
                                IReadOnlyList<NeoXSize> Sizes, int RewritesPerSentence = 4)
{
    /// <summary>Bump when the trainer, tokenizer or label format changes what a spec produces.</summary>
    public const int FormatVersion = 1;

    /// <summary>The default family: built by `stitch zoo build` (sizes and budget chosen by measurement, docs/zoo.md).</summary>
    public static readonly FamilySpec Full = new("full", "brown", 4096, 128,
        new TrainingSpec(Seed: 1234, Batch: 16, Tokens: 2_000_000, PeakLr: 2e-3, WarmupSteps: 30),
        [new NeoXSize("s", 64, 2, 4), new NeoXSize("m", 128, 3, 4), new NeoXSize("l", 192, 4, 6)]);

    /// <summary>A reduced family for tests and a first look: the same recipe, tiny sizes and budget.</summary>
    public static readonly FamilySpec Ci = new("ci", "brown-ci", 1024, 64,
        new TrainingSpec(Seed: 1234, Batch: 16, Tokens: 100_000, PeakLr: 3e-3, WarmupSteps: 10),
        [new NeoXSize("s", 32, 1, 2), new NeoXSize("m", 48, 2, 2), new NeoXSize("l", 64, 2, 4)]);

    public static FamilySpec Named(string name) => name switch
    {
        "full" => Full,
        "ci" => Ci,
        _ => throw StitchingException.InvalidArgument("family", $"'{name}' is not a zoo family; use full or ci."),
    };

    public string ModelName(NeoXSize size) => $"{Prefix}-{size.Name}";

    /// <summary>First 8 hex digits of SHA-256 over the spec, the format version and the corpus package.</summary>
    public string Hash
    {
        get
        {
            var text = JsonSerializer.Serialize(new { Name, Prefix, VocabSize, Context, Training, Sizes, RewritesPerSentence, FormatVersion, BrownCorpus.PackageVersion });
            return Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)))[..8];
        }
    }
}
