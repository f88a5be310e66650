using Stitching.Client;
using Grpc.Core;
using Stitching.Core.Tensors;
using Stitching.Contracts.Common.V1;
using Stitching.Tests.Fixtures;
using DType = Stitching.Core.Tensors.DType;

namespace Stitching.Tests.Integration;

[Trait("Category", "Integration")]
public class TensorRoundTripTests : IAsyncLifetime
{
    private TestServer _server = null!;
    public async Task InitializeAsync() => _server = await TestServer.StartAsync();
    public async Task DisposeAsync() => await _server.DisposeAsync();
    private ArtifactsService.ArtifactsServiceClient Client => new(_server.Channel);

    public static TheoryData<DType> AllDTypes => new(Enum.GetValues<DType>());

    [Theory]
    [MemberData(nameof(AllDTypes))]
    public async Task Every_dtype_survives_upload_and_read_back_over_grpc(DType dtype)
    {
        var shape = new long[] { 3, 5, 7 };
        var data = new byte[HostTensor.ByteLength(dtype, shape)];
        new Random((int)dtype + 11).NextBytes(data);
        var r = new ArtifactRef { Kind = "tensors", Id = $"rt-{dtype}" };
        var manifest = await TensorTransfer.UploadAsync(Client, r, [new HostTensor("x", dtype, shape, data)]);
        Assert.Equal("tensors.safetensors", manifest.Files.Single().Name);

        var back = (await TensorTransfer.ReadAsync(Client, r)).Single();
        Assert.Equal(dtype, back.DType);
        Assert.Equal(shape, back.Shape);
        Assert.Equal(data, back.Data.ToArray());
    }

    [Fact]
    public async Task Tensor_over_64_MB_streams_in_chunks_and_round_trips()
    {
        // 80 MiB of float32: 20x over gRPC's default 4 MiB message limit, so only chunking gets it through.
        var rows = 5120; var cols = 4096;
        var values = new float[rows * cols];
        var rng = new Random(5);
        for (var i = 0; i < values.Length; i++) values[i] = (float)rng.NextDouble();
        var t = HostTensor.FromFloats("acts", values, rows, cols);
        Assert.True(t.Data.Length > 64 << 20);
        var r = new ArtifactRef { Kind = "tensors", Id = "big" };
        var manifest = await TensorTransfer.UploadAsync(Client, r, [t, HostTensor.FromFloats("tail", [1f, 2f], 2)]);
        Assert.True(manifest.Files.Single().SizeBytes > 64 << 20);

        var back = await TensorTransfer.ReadAsync(Client, r);
        Assert.Equal(["acts", "tail"], back.Select(b => b.Name));
        Assert.True(SameBytes(back[0], t));
        Assert.Equal([1f, 2f], back[1].ToFloats());
    }

    [Fact]
    public async Task Reading_selected_names_returns_only_those()
    {
        var r = new ArtifactRef { Kind = "tensors", Id = "sel" };
        await TensorTransfer.UploadAsync(Client, r, [HostTensor.FromFloats("a", [1f], 1), HostTensor.FromFloats("b", [2f], 1)]);
        var back = await TensorTransfer.ReadAsync(Client, r, ["b"]);
        Assert.Equal([2f], back.Single().ToFloats());
        var e = await Assert.ThrowsAsync<RpcException>(() => TensorTransfer.ReadAsync(Client, r, ["zzz"]));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
        Assert.Contains("zzz", e.Status.Detail);
    }

    [Fact]
    public async Task Bad_uploads_get_clear_statuses_and_store_nothing()
    {
        var bad = new ArtifactRef { Kind = "tensors", Id = "../x" };
        var e = await Assert.ThrowsAsync<RpcException>(() => TensorTransfer.UploadAsync(Client, bad, [HostTensor.FromFloats("a", [1f], 1)]));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("target.ref.id", e.Status.Detail);

        var r = new ArtifactRef { Kind = "tensors", Id = "dup" };
        await TensorTransfer.UploadAsync(Client, r, [HostTensor.FromFloats("a", [1f], 1)]);
        var dup = await Assert.ThrowsAsync<RpcException>(() => TensorTransfer.UploadAsync(Client, r, [HostTensor.FromFloats("a", [9f], 1)]));
        Assert.Equal(StatusCode.AlreadyExists, dup.StatusCode);
        Assert.Equal(new[] { 1f }, (await TensorTransfer.ReadAsync(Client, r)).Single().ToFloats());

        // A header announcing more bytes than arrive.
        using var call = Client.UploadTensors();
        await call.RequestStream.WriteAsync(new UploadTensorsRequest { Target = new UploadTarget { Ref = new ArtifactRef { Kind = "tensors", Id = "short" } } });
        await call.RequestStream.WriteAsync(new UploadTensorsRequest { Chunk = new TensorChunk { Header = new TensorHeader { Name = "x", Dtype = Contracts.Common.V1.DType.F32, ByteLength = 8, Shape = { 2 } } } });
        await call.RequestStream.WriteAsync(new UploadTensorsRequest { Chunk = new TensorChunk { Data = Google.Protobuf.ByteString.CopyFrom(new byte[4]) } });
        await call.RequestStream.CompleteAsync();
        var shortErr = await Assert.ThrowsAsync<RpcException>(async () => await call);
        Assert.Equal(StatusCode.InvalidArgument, shortErr.StatusCode);
        var missing = await Assert.ThrowsAsync<RpcException>(async () => await Client.GetArtifactAsync(new GetArtifactRequest { Ref = new ArtifactRef { Kind = "tensors", Id = "short" } }));
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
    }

    private static bool SameBytes(HostTensor a, HostTensor b) => a.Data.Span.SequenceEqual(b.Data.Span);
}
