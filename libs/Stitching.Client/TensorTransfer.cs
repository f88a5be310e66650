using Stitching.Core.Tensors;
using Grpc.Core;
using Stitching.Contracts.Common.V1;

namespace Stitching.Client;

/// <summary>Client side of tensor upload/download over the Artifacts service, in chunks.</summary>
public static class TensorTransfer
{
    public static Task<ArtifactManifest> UploadAsync(ArtifactsService.ArtifactsServiceClient client, ArtifactRef target, IEnumerable<HostTensor> tensors,
        string? file = null, IDictionary<string, string>? metadata = null, CancellationToken ct = default)
    {
        var t = new UploadTarget { Ref = target, File = file ?? "" };
        if (metadata is not null) t.Metadata.Add(metadata);
        return UploadChunksAsync(client, t, tensors.SelectMany(t => TensorCodec.ToChunks(t)), ct);
    }

    /// <summary>
    /// Streams a target and then chunks. When the server ends the call early (a refused target, a bad chunk, no
    /// token), the write that fails reports only that the stream was reset; the call's own status says why, so that
    /// is what is thrown.
    /// </summary>
    public static async Task<ArtifactManifest> UploadChunksAsync(ArtifactsService.ArtifactsServiceClient client, UploadTarget target,
        IEnumerable<TensorChunk> chunks, CancellationToken ct = default)
    {
        using var call = client.UploadTensors(cancellationToken: ct);
        try
        {
            await call.RequestStream.WriteAsync(new UploadTensorsRequest { Target = target }, ct);
            foreach (var chunk in chunks)
                await call.RequestStream.WriteAsync(new UploadTensorsRequest { Chunk = chunk }, ct);
            await call.RequestStream.CompleteAsync();
        }
        catch (Exception e) when (e is InvalidOperationException or RpcException or IOException && !ct.IsCancellationRequested)
        {
            await call.ResponseAsync; // throws the server's status
            throw;
        }
        return await call;
    }

    public static async Task<List<HostTensor>> ReadAsync(ArtifactsService.ArtifactsServiceClient client, ArtifactRef source, IEnumerable<string>? names = null,
        string? file = null, CancellationToken ct = default)
    {
        var request = new ReadTensorsRequest { Ref = source, File = file ?? "" };
        if (names is not null) request.Names.AddRange(names);
        using var call = client.ReadTensors(request, cancellationToken: ct);
        var assembler = new TensorAssembler();
        var result = new List<HostTensor>();
        await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
            if (assembler.Add(chunk) is { } done) result.Add(done);
        assembler.Finish();
        return result;
    }
}
