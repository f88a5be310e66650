using Stitching.Core.Safetensors;
using Stitching.Core.Stitches;
using Stitching.Sae.Interop;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Transfer;

/// <summary>
/// Transfer on local files, no server: an SAELens folder and a stitch.safetensors file in, an SAELens
/// folder out (what `stitch sae transfer --sae DIR --stitch FILE --out DIR` runs).
/// </summary>
public static class FolderTransfer
{
    public static SaeConfig Run(string saeFolder, string stitchFile, string outFolder, bool renormalize, string model = "", string hook = "")
    {
        using var scope = NewDisposeScope();
        using var source = SaeLensFormat.ReadFolder(saeFolder, "--sae");
        using var reader = SafetensorsReader.Open(stitchFile);
        var stitch = StitchFile.ToStitch(StitchFile.Read(reader, "--stitch"), "--stitch");
        using var transferred = Compose(source, stitch, renormalize, model, hook);
        SaeLensFormat.WriteFolder(outFolder, transferred);
        return transferred.Config;
    }

    /// <summary>Transfer, then optionally unit-norm decoder rows (the shared path of the RPC and the CLI).</summary>
    public static SaeParameters Compose(SaeParameters source, AffineStitch stitch, bool renormalize, string model, string hook)
    {
        var transferred = SaeTransfer.Apply(source, stitch, model, hook);
        if (!renormalize) return transferred;
        using (transferred) return SaeTransfer.RenormalizeDecoder(transferred);
    }
}
