namespace Stitching.Sae;

/// <summary>gRPC surface of the sae service. Its RPCs arrive with the issue that builds them.</summary>
public sealed class SaeGrpcService : Contracts.Sae.V1.SaeService.SaeServiceBase
{
}
