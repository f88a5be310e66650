using Stitching.Contracts.Common.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Compute;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;

using FlopLedger = Stitching.Core.Compute.FlopLedger;

namespace Stitching.Stitch.Artifacts;

/// <summary>
/// A stitch in the store (kind "stitch"): <see cref="StitchFile"/> plus the manifest (models, hooks,
/// method, tokens, metrics, FLOP ledger, seconds).
/// </summary>
public static class StitchArtifact
{
    public const string HowToMake = "fit one (StitchService.Fit) or import one (ImportStitch), or list artifacts of kind \"stitch\".";

    /// <summary>Reads the four tensors of a stitch artifact a request names in <paramref name="field"/> (any thread).</summary>
    public static IReadOnlyList<HostTensor> Read(ArtifactStore store, ArtifactRef? r, string field)
    {
        store.Require(r, StitchFile.Kind, field, HowToMake);
        return StitchFile.Read(store.ReadAllBytes(r!, StitchFile.FileName), $"{r!.Display()}/{StitchFile.FileName}", field);
    }

    /// <summary>Writes the file and the manifest and commits the artifact.</summary>
    public static ArtifactManifest Write(ArtifactStore store, ArtifactRef r, IReadOnlyList<HostTensor> tensors,
        IReadOnlyDictionary<string, string> metadata, IReadOnlyDictionary<string, double> metrics, string specJson, FlopLedger? ledger = null)
    {
        using var writer = store.Create(r);
        writer.WriteFile(StitchFile.FileName, StitchFile.ToBytes(tensors, metadata));
        foreach (var (k, v) in metadata) writer.Manifest.Metadata[k] = v;
        foreach (var (k, v) in metrics) writer.Manifest.Metrics[k] = v;
        writer.Manifest.SpecJson = specJson;
        if (ledger is not null) writer.Manifest.Ledger = ledger.ToProto();
        return writer.Commit();
    }
}
