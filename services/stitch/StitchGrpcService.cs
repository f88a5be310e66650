namespace Stitching.Stitch;

/// <summary>gRPC surface of the stitch service. Its RPCs arrive with the issue that builds them.</summary>
public sealed class StitchGrpcService : Contracts.Stitch.V1.StitchService.StitchServiceBase
{
}
