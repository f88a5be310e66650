using Grpc.Core;
using Grpc.Net.Client;
using Stitching.Contracts.Common.V1;

namespace Stitching.Tests.Fixtures;

/// <summary>Watches an operation to its end over gRPC and asserts it succeeded.</summary>
public static class OperationWaiter
{
    public static async Task<Operation> SucceededAsync(GrpcChannel channel, string id)
    {
        using var call = new OperationsService.OperationsServiceClient(channel).WatchOperation(new WatchOperationRequest { Id = id });
        Operation last = null!;
        await foreach (var op in call.ResponseStream.ReadAllAsync()) last = op;
        Assert.True(last.State == OperationState.Succeeded, $"{last.State}: {last.Error}");
        return last;
    }
}
