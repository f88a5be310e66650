using Grpc.Core;
using Grpc.Net.Client;
using Stitching.Contracts.Common.V1;

namespace Stitching.Tests.Fixtures;

/// <summary>Watches an operation to its end over gRPC and asserts it succeeded.</summary>
public static class OperationWaiter
{
    /// <summary>Fails after <paramref name="timeout"/> (default 10 minutes) with the last state and phase seen, rather than hanging a run.</summary>
    public static async Task<Operation> SucceededAsync(GrpcChannel channel, string id, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromMinutes(10));
        using var call = new OperationsService.OperationsServiceClient(channel).WatchOperation(new WatchOperationRequest { Id = id }, cancellationToken: cts.Token);
        Operation last = null!;
        try
        {
            await foreach (var op in call.ResponseStream.ReadAllAsync(cts.Token)) last = op;
        }
        catch (Exception e) when (cts.IsCancellationRequested && e is RpcException or OperationCanceledException)
        {
            Assert.Fail($"operation {id} did not end in time; last seen: {last?.State} phase '{last?.Progress?.Phase}'");
        }
        Assert.True(last.State == OperationState.Succeeded, $"{last.State}: {last.Error}");
        return last;
    }

    /// <summary>Waits for a started operation to succeed and unpacks its result.</summary>
    public static async Task<T> ResultAsync<T>(GrpcChannel channel, Task<Operation> started, TimeSpan? timeout = null) where T : Google.Protobuf.IMessage, new() =>
        (await SucceededAsync(channel, (await started).Id, timeout)).Result.Unpack<T>();
}
