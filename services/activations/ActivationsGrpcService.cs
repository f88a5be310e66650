namespace Stitching.Activations;

/// <summary>gRPC surface of the activations service. Its RPCs arrive with the issue that builds them.</summary>
public sealed class ActivationsGrpcService : Contracts.Activations.V1.ActivationsService.ActivationsServiceBase
{
}
