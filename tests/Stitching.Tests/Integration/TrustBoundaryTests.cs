using System.Diagnostics;
using Grpc.Core;
using Grpc.Health.V1;
using Stitching.Client;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Tensors;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Integration;

/// <summary>
/// architecture.md "Trust boundaries" over real gRPC: client-named paths only under the configured roots
/// (symlinks followed, FIFOs refused), bearer tokens, uploads of client data only, and per-call limits
/// that hold before any memory is spent.
/// </summary>
[Trait("Category", "Integration")]
public class TrustBoundaryTests
{
    private static ExtractRequest TextFiles(params string[] paths) => new()
    {
        Corpus = new CorpusSpec { TextFiles = new TextFiles { Paths = { paths } } },
        Tokens = new TokenSetSpec { ContextLength = 8 },
        Models = { new ModelHooks { Model = new ModelSpec { Model = "tiny-a" }, Hooks = { "blocks.1.hook_resid_pre" } } },
    };

    private static async Task<StatusCode> CodeOf(Func<Task> call)
    {
        try { await call(); return StatusCode.OK; }
        catch (RpcException e) { return e.StatusCode; }
    }

    [Fact]
    public async Task Paths_are_off_by_default_and_confined_to_the_allowed_roots()
    {
        using var root = new TempDir("allowed");
        using var outside = new TempDir("outside");
        var inside = Path.Combine(root.Path, "corpus.txt");
        await File.WriteAllTextAsync(inside, string.Join("\n", TinyModels.Documents()));
        var secret = Path.Combine(outside.Path, "secret.txt");
        await File.WriteAllTextAsync(secret, "not for clients");
        File.CreateSymbolicLink(Path.Combine(root.Path, "link.txt"), secret);
        File.CreateSymbolicLink(Path.Combine(root.Path, "linked-dir"), outside.Path);
        var fifo = Path.Combine(root.Path, "fifo");
        Process.Start("mkfifo", fifo)!.WaitForExit();
        var tinyFolder = Path.Combine(TinyModels.ModelsRoot, "tiny-a");

        // No roots configured: every client-named path is refused, whether or not it exists.
        await using (var closed = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot))
        {
            var a = new ActivationsService.ActivationsServiceClient(closed.Channel);
            foreach (var p in new[] { inside, "/etc/passwd", "/no/such/file" })
                Assert.Equal(StatusCode.PermissionDenied, await CodeOf(() => a.ExtractAsync(TextFiles(p)).ResponseAsync));
            Assert.Equal(StatusCode.PermissionDenied, await CodeOf(() => a.DescribeModelAsync(new DescribeModelRequest { Model = new ModelSpec { Model = tinyFolder } }).ResponseAsync));
            var sae = new SaeService.SaeServiceClient(closed.Channel);
            Assert.Equal(StatusCode.PermissionDenied, await CodeOf(() => sae.ImportAsync(new ImportRequest { Path = "/etc" }).ResponseAsync));
            Assert.Equal(StatusCode.PermissionDenied, await CodeOf(() => sae.ExportAsync(new ExportRequest { Path = "/tmp/x", Sae = new ArtifactRef { Kind = "sae", Id = "none" } }).ResponseAsync));
        }

        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot, allowedRoots: [root.Path]);
        var client = new ActivationsService.ActivationsServiceClient(server.Channel);
        var refused = new[] { secret, Path.Combine(root.Path, "link.txt"), Path.Combine(root.Path, "linked-dir", "secret.txt"), Path.Combine(root.Path, "..", Path.GetFileName(outside.Path), "secret.txt"), "/proc/self/environ" };
        foreach (var p in refused)
        {
            var e = await Assert.ThrowsAsync<RpcException>(() => client.ExtractAsync(TextFiles(p)).ResponseAsync);
            Assert.Equal(StatusCode.PermissionDenied, e.StatusCode);
            Assert.Contains("corpus.text_files.paths[0]", e.Status.Detail);
            Assert.DoesNotContain("not for clients", e.Status.Detail);
        }
        var clock = Stopwatch.StartNew();
        Assert.Equal(StatusCode.PermissionDenied, await CodeOf(() => client.ExtractAsync(TextFiles(fifo)).ResponseAsync));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), "a FIFO must be refused, not opened");
        // Model folders follow the same rule.
        Assert.Equal(StatusCode.PermissionDenied, await CodeOf(() => client.DescribeModelAsync(new DescribeModelRequest { Model = new ModelSpec { Model = tinyFolder } }).ResponseAsync));
        CopyFolder(tinyFolder, Path.Combine(root.Path, "model"));
        var described = await client.DescribeModelAsync(new DescribeModelRequest { Model = new ModelSpec { Model = Path.Combine(root.Path, "model") } });
        Assert.Equal(2, described.Layers);

        // Writes too: an export outside the root is refused before the SAE is even looked up.
        var saeClient = new SaeService.SaeServiceClient(server.Channel);
        Assert.Equal(StatusCode.PermissionDenied, await CodeOf(() => saeClient.ExportAsync(new ExportRequest { Path = Path.Combine(outside.Path, "out"), Sae = new ArtifactRef { Kind = "sae", Id = "none" } }).ResponseAsync));
        Assert.Equal(StatusCode.PermissionDenied, await CodeOf(() => saeClient.ExportAsync(new ExportRequest { Path = Path.Combine(root.Path, "linked-dir", "out"), Sae = new ArtifactRef { Kind = "sae", Id = "none" } }).ResponseAsync));
        Assert.Equal(StatusCode.NotFound, await CodeOf(() => saeClient.ExportAsync(new ExportRequest { Path = Path.Combine(root.Path, "out"), Sae = new ArtifactRef { Kind = "sae", Id = "none" } }).ResponseAsync));
        Assert.False(Directory.Exists(Path.Combine(outside.Path, "out")));

        // A file under the root is read: the extraction's token rows are that file's text.
        var op = await client.ExtractAsync(TextFiles(inside));
        var done = await OperationWaiter.SucceededAsync(server.Channel, op.Id);
        Assert.True(done.Result.Unpack<ExtractResult>().Tokens > 0);
    }

    private static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.EnumerateFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    [Fact]
    public async Task With_tokens_configured_every_rpc_but_health_needs_one()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false,
            settings: new Dictionary<string, string> { ["Stitching:Auth:Tokens:0"] = "right-token" });
        var artifacts = new ArtifactsService.ArtifactsServiceClient(server.Channel);
        Metadata Bearer(string t) => new() { { "authorization", "Bearer " + t } };
        var anonymous = await Assert.ThrowsAsync<RpcException>(() => artifacts.ListArtifactsAsync(new ListArtifactsRequest()).ResponseAsync);
        Assert.Equal(StatusCode.Unauthenticated, anonymous.StatusCode);
        Assert.Contains("Bearer", anonymous.Status.Detail);
        Assert.Equal(StatusCode.Unauthenticated, await CodeOf(() => artifacts.ListArtifactsAsync(new ListArtifactsRequest(), Bearer("wrong-token")).ResponseAsync));
        Assert.Equal(StatusCode.Unauthenticated, await CodeOf(() => new ServerInfoService.ServerInfoServiceClient(server.Channel).GetServerInfoAsync(new GetServerInfoRequest()).ResponseAsync));
        Assert.Equal(StatusCode.Unauthenticated, await CodeOf(() => TensorTransfer.UploadAsync(artifacts, new ArtifactRef { Kind = "tensors", Id = "anon" }, [HostTensor.FromFloats("x", [1f], 1)])));
        Assert.Equal(StatusCode.OK, await CodeOf(() => artifacts.ListArtifactsAsync(new ListArtifactsRequest(), Bearer("right-token")).ResponseAsync));
        var health = await new Health.HealthClient(server.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
    }

    [Fact]
    public async Task Uploads_hold_client_tensors_only()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false);
        var artifacts = new ArtifactsService.ArtifactsServiceClient(server.Channel);
        foreach (var kind in new[] { "sae", "stitch", "activation-set", "token-set", "sae-checkpoint" })
            Assert.Equal(StatusCode.PermissionDenied, await CodeOf(() => TensorTransfer.UploadAsync(artifacts, new ArtifactRef { Kind = kind, Id = "forged" }, [HostTensor.FromFloats("x", [1f], 1)])));
        foreach (var name in new[] { "", "../../x", "a\u0001b" })
            Assert.Equal(StatusCode.InvalidArgument, await CodeOf(() => TensorTransfer.UploadAsync(artifacts, new ArtifactRef { Kind = "tensors", Id = "named" }, [HostTensor.FromFloats(name, [1f], 1)])));
        Assert.Empty((await artifacts.ListArtifactsAsync(new ListArtifactsRequest())).Artifacts);
    }

    [Fact]
    public async Task Limits_hold_before_memory_is_spent_and_generation_shares_the_torch_thread()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot,
            settings: new Dictionary<string, string> { ["Stitching:MaxForwardTokens"] = "4096", ["Stitching:MaxGenerateTokens"] = "4000" });
        var client = new ActivationsService.ActivationsServiceClient(server.Channel);
        var model = new ModelSpec { Model = "tiny-a" };
        await client.LoadModelAsync(new LoadModelRequest { Model = model });

        // Over the token cap: refused on the wire shape, before a byte of it is decoded (a claimed [1, 2^40] carries 8 bytes).
        var huge = new Tensor { Name = "token_ids", Dtype = Stitching.Contracts.Common.V1.DType.I32, Data = Google.Protobuf.ByteString.CopyFrom(new byte[8]) };
        huge.Shape.AddRange([1L, 1L << 40]);
        var before = GC.GetTotalAllocatedBytes(precise: true);
        var e = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(new Contracts.Activations.V1.ForwardRequest { Model = model, TokenIds = huge }).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, e.StatusCode);
        Assert.True(GC.GetTotalAllocatedBytes(precise: true) - before < 64L << 20, "the refused call allocated more than 64 MiB");
        var ids = Enumerable.Range(0, 5000).Select(i => i % TinyModels.VocabSize).ToArray();
        var over = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(new Contracts.Activations.V1.ForwardRequest
        {
            Model = model, TokenIds = TensorCodec.ToProto(new HostTensor("token_ids", Stitching.Core.Tensors.DType.I32, [1, ids.Length], System.Runtime.InteropServices.MemoryMarshal.AsBytes(ids.AsSpan()).ToArray())),
        }).ResponseAsync);
        Assert.Equal(StatusCode.ResourceExhausted, over.StatusCode);
        Assert.Contains("MaxForwardTokens", over.Status.Detail);
        Assert.Equal(StatusCode.ResourceExhausted, await CodeOf(() => client.GenerateAsync(new GenerateRequest { Model = model, Prompt = "the", MaxNewTokens = 4001 }).ResponseAsync));

        // A long generation (4000 steps, seconds even on a fast machine: 200 steps once ended within the
        // 200 ms wait) and a short Forward at once: the Forward is served between steps. The bound is an
        // ordering, not a time: the Forward finishes while the generation is still running (before,
        // Generate held the torch thread for all its steps and the Forward waited for the end).
        var small = TensorCodec.ToProto(new HostTensor("token_ids", Stitching.Core.Tensors.DType.I32, [1, 4], System.Runtime.InteropServices.MemoryMarshal.AsBytes(new[] { 5, 6, 7, 8 }.AsSpan()).ToArray()));
        var generate = client.GenerateAsync(new GenerateRequest { Model = model, Prompt = "the", MaxNewTokens = 4000, IgnoreEos = true }).ResponseAsync;
        await Task.Delay(200);
        await client.ForwardAsync(new Contracts.Activations.V1.ForwardRequest { Model = model, TokenIds = small, ReturnLoss = true });
        Assert.False(generate.IsCompleted, "the generation ended before the Forward: make it longer for this check to mean anything");
        var generated = await generate;
        Assert.Equal(4000, generated.NewIds.Count);
    }
}
