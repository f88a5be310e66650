using Microsoft.Extensions.DependencyInjection;
using System.Runtime.InteropServices;
using Grpc.Core;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Core.Tensors;
using Stitching.Tests.Fixtures;
using TorchSharp;

namespace Stitching.Tests.Activations;

/// <summary>Extraction operations: TokenSet + ActivationSet artifacts, shards, reuse, pairing, errors.</summary>
[Trait("Category", "Integration")]
public class ExtractionTests
{
    private static ExtractRequest Request(int context = 16, long shardTokens = 64, params (string Model, string[] Hooks)[] models)
    {
        var r = new ExtractRequest
        {
            Corpus = new CorpusSpec { Texts = new InlineTexts { Texts = { TinyModels.Documents() } } },
            Tokens = new TokenSetSpec { ContextLength = context, MaxTokens = 40 * context },
            BatchSize = 3, ShardTokens = shardTokens,
        };
        foreach (var (m, hooks) in models) r.Models.Add(new ModelHooks { Model = new ModelSpec { Model = m }, Hooks = { hooks } });
        return r;
    }

    private static async Task<Operation> RunAsync(TestServer server, ExtractRequest request)
    {
        var op = await new ActivationsService.ActivationsServiceClient(server.Channel).ExtractAsync(request);
        using var watch = new OperationsService.OperationsServiceClient(server.Channel).WatchOperation(new WatchOperationRequest { Id = op.Id });
        Operation last = op;
        await foreach (var o in watch.ResponseStream.ReadAllAsync()) last = o;
        return last;
    }

    /// <summary>All tensors of an activation set, read back over ReadActivations, concatenated per name.</summary>
    private static async Task<Dictionary<string, torch.Tensor>> ReadAllAsync(TestServer server, ArtifactRef set)
    {
        var client = new ActivationsService.ActivationsServiceClient(server.Channel);
        using var call = client.ReadActivations(new ReadActivationsRequest { ActivationSet = set });
        var parts = new Dictionary<string, List<torch.Tensor>>();
        var assembler = new TensorAssembler();
        await foreach (var chunk in call.ResponseStream.ReadAllAsync())
            if (assembler.Add(chunk) is { } t)
            {
                if (!parts.TryGetValue(t.Name, out var list)) parts[t.Name] = list = [];
                list.Add(TorchTensors.ToTorch(t));
            }
        return parts.ToDictionary(p => p.Key, p => torch.cat(p.Value, 0));
    }

    [Fact]
    public async Task Extraction_writes_bounded_shards_that_match_a_direct_forward_and_is_reused()
    {
        await using var server = await TestServer.StartAsync(redis: true, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var request = Request(models: ("tiny-a", ["blocks.1.hook_resid_pre", "blocks.0.hook_mlp_out"]));
        var done = await RunAsync(server, request);
        Assert.True(done.State == OperationState.Succeeded, done.Error?.Message);
        var result = done.Result.Unpack<ExtractResult>();
        Assert.False(result.Reused[0]);
        Assert.Equal(40, result.Rows); // MaxTokens / context, the corpus has more
        Assert.Equal(640, result.Tokens);

        var artifacts = new ArtifactsService.ArtifactsServiceClient(server.Channel);
        var manifest = await artifacts.GetArtifactAsync(new GetArtifactRequest { Ref = result.ActivationSets[0] });
        // 64-token shards of 4 rows: 10 shards, none bigger than its rows' worth of data
        Assert.Equal("10", manifest.Metadata["shards"]);
        Assert.All(manifest.Files.Where(f => f.Name.StartsWith("shard-")), f => Assert.True(f.SizeBytes < 64 * (2 * 32 * 4 + 13) + 2048, $"{f.Name}: {f.SizeBytes} bytes"));

        var data = await ReadAllAsync(server, result.ActivationSets[0]);
        Assert.Equal([640L, 32], data["blocks.1.hook_resid_pre"].shape);
        Assert.True(data["row"].equal(torch.arange(40, dtype: torch.ScalarType.Int32).repeat_interleave(16)).all().item<bool>());

        // rows 0..39 through Forward give the same activations
        var tokens = data["token_ids"].reshape(40, 16);
        var forward = await new ActivationsService.ActivationsServiceClient(server.Channel).ForwardAsync(new ForwardRequest
        {
            Model = new ModelSpec { Model = "tiny-a" }, TokenIds = TensorCodec.ToProto(TorchTensors.ToHost(tokens, "ids")),
            Capture = { "blocks.1.hook_resid_pre" },
        });
        var direct = TorchTensors.ToTorch(TensorCodec.FromProto(forward.Captured[0])).reshape(640, 32);
        Assert.True((direct - data["blocks.1.hook_resid_pre"]).abs().max().item<float>() < 1e-5);

        // the token rows are the corpus tokenized and joined with EOS, as the TokenSet says
        var tokenized = await new ActivationsService.ActivationsServiceClient(server.Channel).TokenizeAsync(new TokenizeRequest
        {
            Model = new ModelSpec { Model = "tiny-a" }, Texts = { TinyModels.Documents()[0] }, BosPolicy = BosPolicy.Never,
        });
        Assert.Equal(tokenized.Texts[0].Ids.Take(16), MemoryMarshal.Cast<byte, int>(tokens[0].contiguous().bytes).ToArray());

        var again = await RunAsync(server, request);
        var second = again.Result.Unpack<ExtractResult>();
        Assert.True(second.Reused[0]);
        Assert.Equal(result.ActivationSets[0], second.ActivationSets[0]);
        Assert.Equal(result.TokenSet, second.TokenSet);
    }

    [Fact]
    public async Task Paired_extraction_shares_one_token_set_row_for_row()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var done = await RunAsync(server, Request(shardTokens: 1000, models: [("tiny-a", ["blocks.1.hook_resid_pre"]), ("tiny-b", ["blocks.2.hook_resid_pre"])]));
        Assert.True(done.State == OperationState.Succeeded, done.Error?.Message);
        var result = done.Result.Unpack<ExtractResult>();
        Assert.Equal(2, result.ActivationSets.Count);
        var a = await ReadAllAsync(server, result.ActivationSets[0]);
        var b = await ReadAllAsync(server, result.ActivationSets[1]);
        Assert.True(a["token_ids"].equal(b["token_ids"]).all().item<bool>());
        Assert.Equal([640L, 48], b["blocks.2.hook_resid_pre"].shape);
        Assert.Equal(3, done.Outputs.Count);
    }

    [Fact]
    public async Task Bad_extraction_requests_fail_clearly()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        // Checked when the request arrives: nothing runs, no TokenSet is written for a request that cannot work.
        var badHook = await Assert.ThrowsAsync<RpcException>(() => RunAsync(server, Request(models: ("tiny-a", ["blocks.9.hook_resid_pre"]))));
        Assert.Equal(StatusCode.InvalidArgument, badHook.StatusCode);
        Assert.Contains("models[0].hooks[0]", badHook.Status.Detail);
        var noModel = await Assert.ThrowsAsync<RpcException>(() => RunAsync(server, Request(models: ("missing", ["blocks.0.hook_resid_pre"]))));
        Assert.Equal(StatusCode.NotFound, noModel.StatusCode);
        var tooLong = await Assert.ThrowsAsync<RpcException>(() => RunAsync(server, Request(context: 100000, models: ("tiny-a", ["blocks.0.hook_resid_pre"]))));
        Assert.Equal(StatusCode.InvalidArgument, tooLong.StatusCode);
        Assert.Contains("context_length", tooLong.Status.Detail);
        Assert.Empty(server.Server.Services.GetRequiredService<Stitching.Core.Artifacts.ArtifactStore>().List("token-set"));
    }

    /// <summary>
    /// Extraction at scale: three slices (as three pods would run them, two at once) compose one ActivationSet with the
    /// id, shard files and bytes of a single unsliced extraction made on another store; only the last slice reports it
    /// complete, and the slices are gone afterwards.
    /// </summary>
    [Fact]
    public async Task Three_slices_compose_the_set_one_unsliced_extraction_makes()
    {
        var request = Request(16, 64, ("tiny-a", ["blocks.1.hook_resid_pre"]), ("tiny-b", ["blocks.2.hook_resid_pre"]));
        request.Tokens.MaxTokens = 50 * 16; // 50 rows, 4 rows per shard: 13 shards, sliced 4 / 4 / 5
        await using var sliced = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        ExtractRequest Slice(int i) => new(request) { SliceIndex = i, SliceCount = 3 };
        var firstTwo = await Task.WhenAll(RunAsync(sliced, Slice(0)), RunAsync(sliced, Slice(2)));
        foreach (var op in firstTwo)
        {
            Assert.Equal(OperationState.Succeeded, op.State);
            Assert.All(op.Result.Unpack<ExtractResult>().Complete, Assert.False);
        }
        var store = sliced.Server.Services.GetRequiredService<Stitching.Core.Artifacts.ArtifactStore>();
        Assert.Empty(store.List("activation-set"));
        Assert.Equal(4, store.List("activation-slice").Count); // 2 slices x 2 models
        var last = (await RunAsync(sliced, Slice(1))).Result.Unpack<ExtractResult>();
        Assert.All(last.Complete, Assert.True);
        Assert.Empty(store.List("activation-slice"));

        await using var whole = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var reference = (await RunAsync(whole, request)).Result.Unpack<ExtractResult>();
        Assert.Equal(reference.ActivationSets, last.ActivationSets);
        var wholeStore = whole.Server.Services.GetRequiredService<Stitching.Core.Artifacts.ArtifactStore>();
        for (var m = 0; m < 2; m++)
        {
            var a = store.GetManifest(last.ActivationSets[m]);
            var b = wholeStore.GetManifest(reference.ActivationSets[m]);
            Assert.Equal(13, b.Files.Count);
            Assert.Equal(b.Files.Select(f => (f.Name, f.Sha256, f.SizeBytes)), a.Files.Select(f => (f.Name, f.Sha256, f.SizeBytes)));
            Assert.Equal(b.Metadata["shards"], a.Metadata["shards"]);
            Assert.Equal(b.Metrics["tokens"], a.Metrics["tokens"]);
            Assert.Equal(b.Ledger.TotalFlops, a.Ledger.TotalFlops, 3); // the slices' FLOPs add up to the whole's
        }
        var e = await Assert.ThrowsAsync<RpcException>(() => RunAsync(sliced, new ExtractRequest(request) { SliceIndex = 3, SliceCount = 3 }));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.Contains("slice_index", e.Status.Detail);
    }
}
