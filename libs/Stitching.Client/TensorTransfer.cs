using Stitching.Core.Tensors;
using Grpc.Core;
using Stitching.Contracts.Common.V1;

namespace Stitching.Client;

/// <summary>Client side of tensor upload/download over the Artifacts service, in chunks.</summary>
public static class TensorTransfer
{
    public static async Task<ArtifactManifest> UploadAsync(ArtifactsService.ArtifactsServiceClient client, ArtifactRef target, IEnumerable<HostTensor> tensors,
        string? file = null, IDictionary<string, string>? metadata = null, CancellationToken ct = default)
    {
        using var call = client.UploadTensors(cancellationToken: ct);
        var t = new UploadTarget { Ref = target, File = file ?? "" };
        if (metadata is not null) t.Metadata.Add(metadata);
        try
        {
            await call.RequestStream.WriteAsync(new UploadTensorsRequest { Target = t }, ct);
            foreach (var tensor in tensors)
                foreach (var chunk in TensorCodec.ToChunks(tensor))
                    await call.RequestStream.WriteAsync(new UploadTensorsRequest { Chunk = chunk }, ct);
            await call.RequestStream.CompleteAsync();
        }
        catch (Exception e) when (e is InvalidOperationException or RpcException or IOException && !ct.IsCancellationRequested)
        {
            // The server ended the call early (a refused target, no token): its status says why, not the failed write.
            await call.ResponseAsync;
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
