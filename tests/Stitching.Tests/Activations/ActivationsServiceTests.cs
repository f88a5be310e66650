using Grpc.Core;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Tests.Fixtures;
using TorchSharp;
using DType = Stitching.Core.Tensors.DType;
using Tensor = Stitching.Contracts.Common.V1.Tensor;

namespace Stitching.Tests.Activations;

/// <summary>The activations service over real gRPC with real checkpoints, tokenizer and redis-server.</summary>
[Trait("Category", "Integration")]
public class ActivationsServiceTests
{
    private static async Task<(TestServer Server, ActivationsService.ActivationsServiceClient Client)> StartAsync(bool redis = false)
    {
        var server = await TestServer.StartAsync(redis: redis, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        return (server, new ActivationsService.ActivationsServiceClient(server.Channel));
    }

    private static ModelSpec Tiny(string name = "tiny-a") => new() { Model = name };

    private static torch.Tensor ToTorch(Tensor t) => TorchTensors.ToTorch(TensorCodec.FromProto(t));

    [Fact]
    public async Task Lists_describes_loads_and_tokenizes_store_models()
    {
        var (server, client) = await StartAsync();
        await using var _ = server;
        var list = await client.ListModelsAsync(new ListModelsRequest());
        Assert.Equal(["tiny-a", "tiny-b"], list.Models.Where(m => m.Source == "store").Select(m => m.Name).Order());
        var a = list.Models.Single(m => m.Name == "tiny-a");
        Assert.Equal((2, 32, TinyModels.VocabSize, "gpt_neox"), (a.Layers, a.Width, a.VocabSize, a.Family));
        Assert.False(a.Loaded);
        Assert.Contains("blocks.1.hook_resid_pre", a.Hooks);
        Assert.DoesNotContain("blocks.0.hook_resid_mid", a.Hooks); // parallel residual
        // parameters as the safetensors shapes add up: embed + unembed + blocks + final norm
        long d = 32, v = TinyModels.VocabSize;
        Assert.Equal(2 * v * d + 2 * (4 * d + 3 * d * d + 3 * d + d * d + d + 4 * d * d + 4 * d + 4 * d * d + d) + 2 * d, a.Parameters);

        var loaded = await client.LoadModelAsync(new LoadModelRequest { Model = Tiny() });
        Assert.True(loaded.Loaded);
        Assert.True((await client.DescribeModelAsync(new DescribeModelRequest { Model = Tiny() })).Loaded);

        const string text = "The stitch maps the residual stream of one model onto another.";
        var tokens = await client.TokenizeAsync(new TokenizeRequest { Model = new ModelSpec { Model = "tiny-a" }, Texts = { text } });
        var t = tokens.Texts.Single();
        Assert.True(t.Ids.Count < text.Length, "BPE merges should shorten the text");
        Assert.Equal(text, string.Concat(t.Starts.Zip(t.Ends, (s, e) => text[s..e])));
        Assert.Equal(text, (await client.DetokenizeAsync(new DetokenizeRequest { Model = new ModelSpec { Model = "tiny-a" }, Ids = { t.Ids } })).Text);

        Assert.True((await client.UnloadModelAsync(new UnloadModelRequest { Model = Tiny() })).Unloaded);
        Assert.False((await client.DescribeModelAsync(new DescribeModelRequest { Model = Tiny() })).Loaded);
    }

    [Fact]
    public async Task Forward_splices_and_reports_loss_kl_and_top_k()
    {
        var (server, client) = await StartAsync();
        await using var _ = server;
        var ids = TensorCodec.ToProto(new HostTensor("ids", DType.I64, [2, 12],
            Enumerable.Range(0, 24).Select(i => (long)(i * 37 % TinyModels.VocabSize)).SelectMany(BitConverter.GetBytes).ToArray()));
        var clean = await client.ForwardAsync(new ForwardRequest
        {
            Model = Tiny(), TokenIds = ids, Capture = { "blocks.1.hook_resid_pre" }, ReturnLogits = true, ReturnLoss = true, TopK = 3,
        });
        var logits = ToTorch(clean.Logits);
        Assert.Equal([2L, 12, TinyModels.VocabSize], logits.shape);
        // loss recomputed here from the returned logits (log-sum-exp minus the target logit)
        var targets = ToTorch(clean.TokenIds)[.., 1..];
        var expected = (logits[.., ..11].logsumexp(-1) - logits[.., ..11].gather(-1, targets.unsqueeze(-1)).squeeze(-1)).mean().item<float>();
        Assert.Equal(expected, clean.MeanLoss, 4);
        Assert.True(ToTorch(clean.TopKIds)[.., .., 0].equal(logits.argmax(-1)).all().item<bool>());

        var spliced = await client.ForwardAsync(new ForwardRequest
        {
            Model = Tiny(), TokenIds = ids, ReturnLoss = true, ReturnKl = true,
            Interventions = { new Intervention { Hook = "blocks.1.hook_resid_pre", Replace = clean.Captured[0] } },
        });
        Assert.Equal(clean.MeanLoss, spliced.MeanLoss);
        Assert.Equal(0, spliced.MeanKl, 6);
        var ablated = await client.ForwardAsync(new ForwardRequest
        {
            Model = Tiny(), TokenIds = ids, ReturnLoss = true, ReturnKl = true,
            Interventions = { new Intervention { Hook = "blocks.1.hook_resid_pre", Ablate = new Ablate() } },
        });
        Assert.True(ablated.MeanKl > 1e-3);
        Assert.Equal(clean.MeanLoss, ablated.CleanMeanLoss, 5);
    }

    [Fact]
    public async Task Bad_requests_get_clear_statuses()
    {
        var (server, client) = await StartAsync();
        await using var _ = server;
        var missing = await Assert.ThrowsAsync<RpcException>(() => client.DescribeModelAsync(new DescribeModelRequest { Model = Tiny("no-such-model") }).ResponseAsync);
        Assert.Equal(StatusCode.NotFound, missing.StatusCode);
        var hook = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(new ForwardRequest { Model = Tiny(), Text = "hello", Capture = { "blocks.7.hook_resid_pre" } }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, hook.StatusCode);
        Assert.Contains("capture[0]", hook.Status.Detail);
        var mid = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(new ForwardRequest { Model = Tiny(), Text = "hello", Capture = { "blocks.0.hook_resid_mid" } }).ResponseAsync);
        Assert.Contains("parallel residual", mid.Status.Detail);
        var ids = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(new ForwardRequest
        {
            Model = Tiny(), TokenIds = TensorCodec.ToProto(new HostTensor("ids", DType.I32, [2], BitConverter.GetBytes(5).Concat(BitConverter.GetBytes(99999)).ToArray())),
        }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, ids.StatusCode);
        Assert.Contains("token_ids", ids.Status.Detail);
        var dtype = await Assert.ThrowsAsync<RpcException>(() => client.LoadModelAsync(new LoadModelRequest { Model = new ModelSpec { Model = "tiny-a", Dtype = "int8" } }).ResponseAsync);
        Assert.Contains("model.dtype", dtype.Status.Detail);
        var shape = await Assert.ThrowsAsync<RpcException>(() => client.ForwardAsync(new ForwardRequest
        {
            Model = Tiny(), Text = "hello", Capture = { "blocks.1.hook_resid_pre" },
            Interventions = { new Intervention { Hook = "blocks.0.hook_resid_pre", Add = new AddVector { Vector = TensorCodec.ToProto(new HostTensor("v", DType.F32, [3], new byte[12])) } } },
        }).ResponseAsync);
        Assert.Equal(StatusCode.InvalidArgument, shape.StatusCode);
        Assert.Contains("add.vector", shape.Status.Detail);
        // the service still works afterwards
        Assert.NotEmpty((await client.ForwardAsync(new ForwardRequest { Model = Tiny(), Text = "hello", Capture = { "blocks.0.hook_resid_pre" } })).Captured);
    }

    [Fact]
    public async Task Greedy_generation_follows_the_argmax_chain_and_steering_changes_it()
    {
        var (server, client) = await StartAsync();
        await using var _ = server;
        var generated = await client.GenerateAsync(new GenerateRequest { Model = Tiny(), Prompt = "The residual stream", MaxNewTokens = 6, IgnoreEos = true });
        Assert.Equal(6, generated.NewIds.Count);
        // independent path: repeated Forward calls, argmax of the last position
        var ids = generated.PromptIds.ToList();
        for (var i = 0; i < 6; i++)
        {
            var f = await client.ForwardAsync(new ForwardRequest
            {
                Model = Tiny(), TopK = 1,
                TokenIds = TensorCodec.ToProto(new HostTensor("ids", DType.I32, [ids.Count], ids.SelectMany(BitConverter.GetBytes).ToArray())),
            });
            ids.Add((int)ToTorch(f.TopKIds)[0, -1, 0].item<long>());
        }
        Assert.Equal(ids.Skip(generated.PromptIds.Count), generated.NewIds);

        var direction = TensorCodec.ToProto(TorchTensors.ToHost(torch.randn(32, generator: new torch.Generator(1)), "v"));
        var steered = await client.GenerateAsync(new GenerateRequest
        {
            Model = Tiny(), Prompt = "The residual stream", MaxNewTokens = 6, IgnoreEos = true,
            Interventions = { new Intervention { Hook = "blocks.1.hook_resid_pre", Clamp = new Clamp { Direction = direction, Value = 40 } } },
        });
        Assert.NotEqual(generated.NewIds, steered.NewIds);
    }
}
