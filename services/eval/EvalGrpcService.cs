namespace Stitching.Eval;

/// <summary>gRPC surface of the eval service. Its RPCs arrive with the issue that builds them.</summary>
public sealed class EvalGrpcService : Contracts.Eval.V1.EvalService.EvalServiceBase
{
}
