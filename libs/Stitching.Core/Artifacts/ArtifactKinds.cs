namespace Stitching.Core.Artifacts;

/// <summary>Every kind of artifact the services store, and which of them a client may upload directly.</summary>
public static class ArtifactKinds
{
    public const string TokenSet = "token-set";
    public const string ActivationSet = "activation-set";
    /// <summary>One slice of an ActivationSet extracted apart (ExtractRequest.slice_count > 1); removed once the set is composed.</summary>
    public const string ActivationSlice = "activation-slice";
    public const string Stitch = "stitch";
    public const string Sae = "sae";
    public const string SaeCheckpoint = "sae-checkpoint";
    /// <summary>Client uploads (ArtifactsService.UploadTensors): the only kind a client writes byte for byte.</summary>
    public const string Tensors = "tensors";
}
