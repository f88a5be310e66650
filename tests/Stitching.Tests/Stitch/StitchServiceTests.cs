using Stitching.Client;
using Grpc.Core;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Tensors;
using Stitching.Tests.Fixtures;
using TorchSharp;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace Stitching.Tests.Stitch;

/// <summary>The stitch service over real gRPC: fitting from uploaded tensors and activation sets, apply, transfer, errors.</summary>
[Trait("Category", "Integration")]
public class StitchServiceTests
{
    private static async Task<ArtifactRef> UploadAsync(TestServer server, string id, Tensor activations, string name = "activations")
    {
        var r = new ArtifactRef { Kind = "tensors", Id = id };
        await TensorTransfer.UploadAsync(new ArtifactsService.ArtifactsServiceClient(server.Channel), r, [TorchTensors.ToHost(activations.to(ScalarType.Float32), name)]);
        return r;
    }

    internal static async Task<Operation> WaitAsync(TestServer server, Operation op)
    {
        using var watch = new OperationsService.OperationsServiceClient(server.Channel).WatchOperation(new WatchOperationRequest { Id = op.Id });
        var last = op;
        await foreach (var o in watch.ResponseStream.ReadAllAsync()) last = o;
        return last;
    }

    internal static async Task<FitResult> FitAsync(TestServer server, FitRequest request)
    {
        var done = await WaitAsync(server, await new StitchService.StitchServiceClient(server.Channel).FitAsync(request));
        Assert.True(done.State == OperationState.Succeeded, done.Error?.Message);
        return done.Result.Unpack<FitResult>();
    }

    private static ActivationSource Source(ArtifactRef r) => new() { Artifact = r };

    /// <summary>
    /// docs/flops.md, written out for d_A = 6, d_B = 10: the moments X^T X, Y^T Y, X^T Y over n rows
    /// (2 n (36 + 100 + 60)); per direction a Cholesky solve of a d x d system with k right-hand sides
    /// (2 d^3 / 3 + 2 d^2 k), or the eigh fallback (9 d^3 + 4 d^2 k), and the bias b = mean(y) - mean(x) P (2 d k).
    /// </summary>
    private static double LstsqFlops(long n, bool downByEigh = false) =>
        2.0 * n * (36 + 100 + 60) + (2.0 * 216 / 3 + 2 * 36 * 10 + 2 * 6 * 10)
        + (downByEigh ? 9.0 * 1000 + 4 * 100 * 6 : 2.0 * 1000 / 3 + 2 * 100 * 6) + 2 * 10 * 6;

    [Fact]
    public async Task Fit_from_uploaded_tensors_recovers_a_planted_stitch_and_apply_and_transfer_use_it()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false);
        var (a, b, m, c) = StitchMath.Planted(3000, 6, 10, noise: 0);
        var ra = await UploadAsync(server, "a", a);
        var rb = await UploadAsync(server, "b", b);
        var result = await FitAsync(server, new FitRequest { A = Source(ra), B = Source(rb) });
        Assert.Equal("lstsq", result.Method);
        Assert.True(result.HeldoutTokens is > 150 and < 450, $"{result.HeldoutTokens} held out of 3000 at 10%");
        Assert.Equal(3000, result.TrainTokens + result.HeldoutTokens);
        Assert.True(result.Metrics["fvu_up"] < 1e-8, $"fvu_up {result.Metrics["fvu_up"]}");
        Assert.True(result.Metrics["fvu_up_down"] < 1e-8);
        // B is a noise-free linear image of A, so C_yy [10, 10] has rank 6: the down direction falls back to eigh.
        Assert.Equal("cholesky,eigh", result.Solver);
        Assert.Equal(LstsqFlops(result.TrainTokens, downByEigh: true), result.Flops, 1e-9 * result.Flops);
        Assert.Equal([("stitch.fit", result.Flops)], result.Ledger.Entries.Select(e => (e.Phase, e.Flops)));

        var tensors = await TensorTransfer.ReadAsync(new ArtifactsService.ArtifactsServiceClient(server.Channel), result.Stitch, file: "stitch.safetensors");
        Assert.Equal(new[] { "P_up", "b_up", "P_down", "b_down" }, tensors.Select(t => t.Name));
        Assert.True(StitchMath.RelativeError(TorchTensors.ToTorch(tensors[0]), m) < 1e-4);

        var client = new StitchService.StitchServiceClient(server.Channel);
        var applied = await client.ApplyAsync(new ApplyRequest { Stitch = result.Stitch, Direction = Direction.Up, Activations = TensorCodec.ToProto(TorchTensors.ToHost(a[..5].to(ScalarType.Float32), "x")) });
        var expected = a[..5].matmul(m) + c;
        Assert.True(StitchMath.RelativeError(TorchTensors.ToTorch(TensorCodec.FromProto(applied.Activations)), expected) < 1e-4);

        var v = TorchTensors.ToHost(tensor(new float[] { 1, 0, 0, 0, 0, 0 }), "v");
        var moved = await client.TransferDirectionAsync(new TransferDirectionRequest { Stitch = result.Stitch, Direction = Direction.Up, Vectors = TensorCodec.ToProto(v), Renormalize = true });
        var want = m[0] / m[0].norm();
        Assert.True(StitchMath.RelativeError(TorchTensors.ToTorch(TensorCodec.FromProto(moved.Vectors)), want) < 1e-4);

        var again = await FitAsync(server, new FitRequest { A = Source(ra), B = Source(rb) });
        Assert.True(again.Reused);
        Assert.Equal(result.Stitch, again.Stitch);

        // import: the same four tensors uploaded by a client make an equivalent stitch
        var upload = new ArtifactRef { Kind = "tensors", Id = "external" };
        await TensorTransfer.UploadAsync(new ArtifactsService.ArtifactsServiceClient(server.Channel), upload, tensors);
        var imported = await client.ImportStitchAsync(new ImportStitchRequest { Tensors = upload, Id = "imported", Metadata = { ["model_a"] = "x" } });
        Assert.Equal("import", imported.Metadata["method"]);
        var roundTrip = await client.ApplyAsync(new ApplyRequest { Stitch = imported.Ref, Direction = Direction.UpDown, Activations = TensorCodec.ToProto(TorchTensors.ToHost(a[..5].to(ScalarType.Float32), "x")) });
        Assert.True(StitchMath.RelativeError(TorchTensors.ToTorch(TensorCodec.FromProto(roundTrip.Activations)), a[..5]) < 1e-4);
    }

    [Fact]
    public async Task Adam_fit_reports_flops_and_heldout_metrics_over_grpc()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false);
        var (a, b, _, _) = StitchMath.Planted(2000, 6, 10, noise: 0.1);
        var (ra, rb) = (await UploadAsync(server, "a", a), await UploadAsync(server, "b", b));
        var result = await FitAsync(server, new FitRequest
        {
            A = Source(ra), B = Source(rb), Method = "adam",
            Adam = new AdamSettings { LearningRate = 1e-2, Epochs = 3, BatchSize = 128, InitLstsq = true },
        });
        var steps = 3 * (long)Math.Ceiling(result.TrainTokens / 128.0);
        Assert.Equal(steps, (long)result.Metrics["steps"]);
        // Each Adam step on m rows runs the four maps of A P_up, B P_down and both round trips (4 matmuls of
        // 2 m 6 10 FLOPs), forward and backward (x 3); over 3 epochs every training row is one m: 3 * 1440 n.
        Assert.Equal(LstsqFlops(result.TrainTokens) + 3 * 1440.0 * result.TrainTokens, result.Flops, 1e-9 * result.Flops);
        Assert.True(result.Metrics["fvu_up"] < 0.05, $"{result.Metrics["fvu_up"]}");
        Assert.True(result.Seconds > 0);
    }

    [Fact]
    public async Task Bad_fit_and_apply_requests_get_clear_errors()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false);
        var client = new StitchService.StitchServiceClient(server.Channel);
        var g = new Generator(1);
        var ra = await UploadAsync(server, "a", randn(100, 4, generator: g));
        var rb = await UploadAsync(server, "b", randn(90, 5, generator: g));
        var rc = await UploadAsync(server, "c", randn(100, 5, generator: g));
        var nan = randn(100, 5, generator: g); nan[17, 2] = tensor(float.NaN);
        var rn = await UploadAsync(server, "n", nan);
        var empty = await UploadAsync(server, "e", zeros(0, 5));

        async Task<RpcException> Fails(FitRequest r) => await Assert.ThrowsAsync<RpcException>(async () => await client.FitAsync(r));
        var mismatched = await Fails(new FitRequest { A = Source(ra), B = Source(rb) });
        Assert.Equal(StatusCode.InvalidArgument, mismatched.StatusCode);
        Assert.Contains("same tokens row for row", mismatched.Status.Detail);
        var unknown = await Fails(new FitRequest { A = Source(ra), B = Source(new ArtifactRef { Kind = "tensors", Id = "missing" }) });
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);
        Assert.Contains("b.artifact", unknown.Status.Detail);
        Assert.Equal(StatusCode.InvalidArgument, (await Fails(new FitRequest { A = Source(ra), B = Source(empty) })).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await Fails(new FitRequest { A = Source(ra), B = Source(rc), Method = "sgd" })).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await Fails(new FitRequest { A = Source(ra), B = new ActivationSource { Artifact = rc, Tensor = "nope" } })).StatusCode);

        var withNan = await WaitAsync(server, await client.FitAsync(new FitRequest { A = Source(ra), B = Source(rn) }));
        Assert.Equal(OperationState.Failed, withNan.State);
        Assert.Equal("INVALID_ARGUMENT", withNan.Error.Code);
        Assert.Contains("token 17 holds a NaN", withNan.Error.Message);

        var fitted = await FitAsync(server, new FitRequest { A = Source(ra), B = Source(rc) });
        var wrongWidth = await Assert.ThrowsAsync<RpcException>(async () => await client.ApplyAsync(new ApplyRequest
        {
            Stitch = fitted.Stitch, Direction = Direction.Up, Activations = TensorCodec.ToProto(TorchTensors.ToHost(zeros(3, 5), "x")),
        }));
        Assert.Equal(StatusCode.InvalidArgument, wrongWidth.StatusCode);
        Assert.Contains("width 4", wrongWidth.Status.Detail);
        var noStitch = await Assert.ThrowsAsync<RpcException>(async () => await client.ApplyAsync(new ApplyRequest
        {
            Stitch = new ArtifactRef { Kind = "stitch", Id = "nope" }, Direction = Direction.Up, Activations = TensorCodec.ToProto(TorchTensors.ToHost(zeros(3, 4), "x")),
        }));
        Assert.Equal(StatusCode.NotFound, noStitch.StatusCode);
    }
}
