using Grpc.Core;
using Microsoft.Extensions.Options;
using Stitching.Core.Artifacts;
using Stitching.Core.Caching;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Contracts.Common.V1;
using DType = Stitching.Core.Tensors.DType;

namespace Stitching.Hosting.Endpoints;

/// <summary>Artifact listing, tensor upload into the store and tensor reads through the shard cache.</summary>
public sealed class ArtifactsEndpoint(ArtifactStore store, IShardCache cache, IOptions<StitchingOptions> options) : ArtifactsService.ArtifactsServiceBase
{
    private const string DefaultFile = "tensors.safetensors";
    private const string SpoolFile = "upload.spool";

    public override Task<ListArtifactsResponse> ListArtifacts(ListArtifactsRequest request, ServerCallContext context)
    {
        if (!string.IsNullOrEmpty(request.Kind)) ArtifactIds.Validate(request.Kind, "kind");
        return Task.FromResult(new ListArtifactsResponse { Artifacts = { store.List(request.Kind) } });
    }

    public override Task<ArtifactManifest> GetArtifact(GetArtifactRequest request, ServerCallContext context) =>
        Task.FromResult(store.GetManifest(ArtifactIds.Validate(request.Ref)));

    public override async Task<ArtifactManifest> UploadTensors(IAsyncStreamReader<UploadTensorsRequest> requestStream, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        if (!await requestStream.MoveNext(ct) || requestStream.Current.PartCase != UploadTensorsRequest.PartOneofCase.Target)
            throw StitchingException.InvalidArgument("target", "must be the first message of the stream; send an UploadTarget with the artifact ref before any chunk.");
        var target = requestStream.Current.Target;
        var file = FileName(target.File, "target.file");
        ArtifactIds.Validate(target.Ref, "target.ref");
        // Other kinds are made by the services from checked inputs; a client forging one could feed them anything.
        if (target.Ref.Kind != ArtifactKinds.Tensors)
            throw StitchingException.PermissionDenied($"target.ref.kind: clients upload artifacts of kind \"{ArtifactKinds.Tensors}\" only, not '{target.Ref.Kind}'; make a stitch with ImportStitch, an SAE with Import, activations with Extract.", "target.ref.kind");
        using var writer = store.Create(target.Ref);
        var tensors = new List<(string Name, DType DType, long[] Shape)>();
        var assembler = new TensorAssembler(options.Value.MaxUploadTensorBytes);
        // Tensor bytes go to a spool file as they complete, so memory holds one tensor at a time.
        await using (var spool = new FileStream(writer.PathOf(SpoolFile), FileMode.CreateNew, FileAccess.Write))
        {
            while (await requestStream.MoveNext(ct))
            {
                var msg = requestStream.Current;
                if (msg.PartCase != UploadTensorsRequest.PartOneofCase.Chunk)
                    throw StitchingException.InvalidArgument("target", "may be sent only once, as the first message.");
                if (assembler.Add(msg.Chunk) is { } t)
                {
                    Check.Name(t.Name, "header.name", "a tensor name");
                    if (tensors.Any(x => x.Name == t.Name)) throw StitchingException.InvalidArgument("header.name", $"tensor '{t.Name}' arrived twice; names in one file are unique.");
                    tensors.Add((t.Name, t.DType, t.Shape));
                    await spool.WriteAsync(t.Data, ct);
                }
            }
            assembler.Finish();
        }
        if (tensors.Count == 0)
            throw StitchingException.InvalidArgument("chunk", "no tensor arrived; send a TensorHeader and its data after the target.");
        var header = SafetensorsHeader.Encode(tensors, target.Metadata.Count > 0 ? target.Metadata : null);
        writer.WriteFile(file, s =>
        {
            s.Write(header);
            using var data = File.OpenRead(writer.PathOf(SpoolFile));
            data.CopyTo(s);
        });
        File.Delete(writer.PathOf(SpoolFile));
        foreach (var (k, v) in target.Metadata) writer.Manifest.Metadata[k] = v;
        return writer.Commit();
    }

    public override async Task ReadTensors(ReadTensorsRequest request, IServerStreamWriter<TensorChunk> responseStream, ServerCallContext context)
    {
        var r = ArtifactIds.Validate(request.Ref);
        var file = FileName(request.File, "file");
        var entry = store.FileEntry(r, file);
        using var reader = entry.SizeBytes <= (512L << 20)
            ? SafetensorsReader.FromBytes((await cache.GetFileAsync(r, file, context.CancellationToken)).Bytes, $"{r.Display()}/{file}")
            : new SafetensorsReader(store.OpenRead(r, file), $"{r.Display()}/{file}");
        var names = request.Names.Count > 0 ? request.Names.ToList() : reader.Entries.Select(e => e.Name).ToList();
        for (var i = 0; i < names.Count; i++) // NOT_FOUND before anything is sent
            if (!reader.Contains(names[i]))
                throw StitchingException.NotFound($"names[{i}]: tensor '{Check.Shorten(names[i])}' is not in {r.Display()}/{file}; it holds: {string.Join(", ", reader.Entries.Select(e => e.Name).Take(20))}.", "names");
        foreach (var name in names)
            foreach (var chunk in TensorCodec.ToChunks(reader.Read(name)))
                await responseStream.WriteAsync(chunk, context.CancellationToken);
    }

    public override async Task ReadFile(ReadFileRequest request, IServerStreamWriter<FileChunk> responseStream, ServerCallContext context)
    {
        var r = ArtifactIds.Validate(request.Ref);
        if (string.IsNullOrEmpty(request.File)) throw StitchingException.InvalidArgument("file", "is required: a file name of the artifact's manifest (GetArtifact lists them).");
        var entry = store.FileEntry(r, request.File);
        await using var stream = store.OpenRead(r, request.File); // sha256 verified here, before the first chunk
        stream.Position = 0;
        var buffer = new byte[1 << 20];
        var n = await stream.ReadAsync(buffer, context.CancellationToken);
        await responseStream.WriteAsync(new FileChunk { SizeBytes = entry.SizeBytes, Sha256 = entry.Sha256, Data = Google.Protobuf.ByteString.CopyFrom(buffer, 0, n) }, context.CancellationToken);
        while ((n = await stream.ReadAsync(buffer, context.CancellationToken)) > 0)
            await responseStream.WriteAsync(new FileChunk { Data = Google.Protobuf.ByteString.CopyFrom(buffer, 0, n) }, context.CancellationToken);
    }

    private static string FileName(string? file, string field)
    {
        if (string.IsNullOrEmpty(file)) return DefaultFile;
        ArtifactIds.Validate(file, field);
        if (!file.EndsWith(".safetensors", StringComparison.Ordinal))
            throw StitchingException.InvalidArgument(field, $"'{file}' must end in .safetensors.");
        return file;
    }
}
