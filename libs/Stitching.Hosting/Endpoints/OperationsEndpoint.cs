using Stitching.Core.Errors;
using Grpc.Core;
using Stitching.Core.Artifacts;
using Stitching.Core.Operations;
using Stitching.Contracts.Common.V1;

namespace Stitching.Hosting.Endpoints;

/// <summary>gRPC surface of the operations runner.</summary>
public sealed class OperationsEndpoint(OperationRunner runner) : OperationsService.OperationsServiceBase
{
    public override Task<Operation> StartOperation(StartOperationRequest request, ServerCallContext context) =>
        Task.FromResult(runner.Start(request.Kind, request.Spec));

    public override Task<Operation> GetOperation(GetOperationRequest request, ServerCallContext context) =>
        Task.FromResult(runner.Get(ArtifactIds.Validate(request.Id, "id")));

    public override Task<Operation> CancelOperation(CancelOperationRequest request, ServerCallContext context) =>
        Task.FromResult(runner.Cancel(ArtifactIds.Validate(request.Id, "id")));

    public override Task<ListOperationsResponse> ListOperations(ListOperationsRequest request, ServerCallContext context) =>
        Task.FromResult(new ListOperationsResponse
        {
            Operations = { runner.List(request.Kind, Check.Defined(request.State, "state"), Check.NonNegative(request.Limit, "limit", "0 = no limit")) },
        });

    public override async Task WatchOperation(WatchOperationRequest request, IServerStreamWriter<Operation> responseStream, ServerCallContext context)
    {
        await foreach (var op in runner.WatchAsync(ArtifactIds.Validate(request.Id, "id"), context.CancellationToken))
            await responseStream.WriteAsync(op, context.CancellationToken);
    }
}
