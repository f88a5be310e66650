using Stitching.Client;
using Grpc.Core;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Tensors;
using Stitching.Tests.Fixtures;
using TorchSharp;

namespace Stitching.Tests.Stitch;

/// <summary>Layer matching, fitting and spliced evaluation on the tiny model pair, end to end over gRPC.</summary>
[Trait("Category", "Integration")]
public class SpliceTests
{
    private static readonly string[] HooksA = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre"];
    private static readonly string[] HooksB = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.2.hook_resid_pre"];

    private static async Task<ExtractResult> ExtractAsync(TestServer server, long shardTokens)
    {
        var request = new ExtractRequest
        {
            Corpus = new CorpusSpec { Texts = new InlineTexts { Texts = { TinyModels.Documents() } } },
            Tokens = new TokenSetSpec { ContextLength = 16, MaxTokens = 60 * 16 }, BatchSize = 8, ShardTokens = shardTokens,
            Models =
            {
                new ModelHooks { Model = new ModelSpec { Model = "tiny-a" }, Hooks = { HooksA } },
                new ModelHooks { Model = new ModelSpec { Model = "tiny-b" }, Hooks = { HooksB } },
            },
        };
        var done = await StitchServiceTests.WaitAsync(server, await new ActivationsService.ActivationsServiceClient(server.Channel).ExtractAsync(request));
        Assert.True(done.State == OperationState.Succeeded, done.Error?.Message);
        return done.Result.Unpack<ExtractResult>();
    }

    [Fact]
    public async Task Match_fit_and_splice_run_end_to_end_and_clean_ce_equals_forward_loss()
    {
        await using var server = await TestServer.StartAsync(redis: true, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var client = new StitchService.StitchServiceClient(server.Channel);
        var sets = await ExtractAsync(server, shardTokens: 64);
        var (setA, setB) = (sets.ActivationSets[0], sets.ActivationSets[1]);

        var self = await client.MatchLayersAsync(new MatchLayersRequest { ActivationSetA = setA, ActivationSetB = setA, MaxTokens = 500, IncludeEmbeddings = true });
        Assert.InRange(self.Tokens, 500, 60 * 16);
        Assert.Equal(self.Tokens, self.FitTokens + self.HeldoutTokens);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(1.0, self.Svcca[i * 2 + i], 4);
            Assert.Equal(1.0, self.Cka[i * 2 + i], 4);
            Assert.Equal(i, self.BestB[i]);
        }
        var cross = await client.MatchLayersAsync(new MatchLayersRequest { ActivationSetA = setA, ActivationSetB = setB });
        // The embedding output is not a default candidate on either side.
        Assert.Equal(["blocks.1.hook_resid_pre"], cross.HooksA);
        Assert.Equal(["blocks.1.hook_resid_pre", "blocks.2.hook_resid_pre"], cross.HooksB);
        Assert.Equal(2, cross.Svcca.Count);
        Assert.Equal(2, cross.HeldoutSvcca.Count);
        Assert.All(cross.Svcca, v => Assert.InRange(v, 0, 1 + 1e-9));
        Assert.All(cross.FvuUp.Concat(cross.FvuDown), v => Assert.True(v > 0 && double.IsFinite(v)));
        Assert.Equal("heldout_fvu", cross.Rule);
        var meanFvu = cross.FvuUp.Zip(cross.FvuDown, (u, d) => (u + d) / 2).ToList();
        Assert.Equal(meanFvu.IndexOf(meanFvu.Min()), cross.BestB[0]);

        // the streamed fit over many small shards equals one over big shards
        var bigShards = await ExtractAsync(server, shardTokens: 100000);
        var fitRequest = new FitRequest
        {
            A = new ActivationSource { Artifact = setA, Tensor = "blocks.1.hook_resid_pre" },
            B = new ActivationSource { Artifact = setB, Tensor = "blocks.2.hook_resid_pre" },
        };
        var fit = await StitchServiceTests.FitAsync(server, fitRequest);
        var fitBig = await StitchServiceTests.FitAsync(server, new FitRequest(fitRequest)
        {
            A = new ActivationSource { Artifact = bigShards.ActivationSets[0], Tensor = "blocks.1.hook_resid_pre" },
            B = new ActivationSource { Artifact = bigShards.ActivationSets[1], Tensor = "blocks.2.hook_resid_pre" },
        });
        Assert.Equal(fit.TrainTokens, fitBig.TrainTokens);
        Assert.True(fit.TrainTokens < 60 * 16); // special tokens and held-out rows are excluded
        var artifacts = new ArtifactsService.ArtifactsServiceClient(server.Channel);
        var p1 = TorchTensors.ToTorch((await TensorTransfer.ReadAsync(artifacts, fit.Stitch, ["P_up"], "stitch.safetensors"))[0]);
        var p2 = TorchTensors.ToTorch((await TensorTransfer.ReadAsync(artifacts, fitBig.Stitch, ["P_up"], "stitch.safetensors"))[0]);
        Assert.True(StitchMath.RelativeError(p1, p2) < 1e-5);
        Assert.InRange(fit.Metrics["fvu_up"], 0, 1.5);

        // spliced evaluation: one batch of 6 rows, so Forward's mean loss is directly comparable
        var ids = torch.tensor(Enumerable.Range(0, 6 * 16).Select(i => (i * 37 + 11) % TinyModels.VocabSize).ToArray(), [6, 16]);
        var idsProto = TensorCodec.ToProto(TorchTensors.ToHost(ids, "token_ids"));
        var splice = await client.EvaluateSpliceAsync(new EvaluateSpliceRequest
        {
            ModelA = new ModelSpec { Model = "tiny-a" }, ModelB = new ModelSpec { Model = "tiny-b" }, LayerA = 1, LayerB = 2,
            Stitch = fit.Stitch, TokenIds = idsProto, BatchSize = 8,
        });
        Assert.Equal(new[] { "A", "B", "A->B", "B->A", "A->B->A", "B->A->B" }, splice.Rows.Select(r => r.Run));
        // Models swapped: the stitch's widths no longer match; a clear status, and the server keeps serving.
        var swapped = await Assert.ThrowsAsync<RpcException>(async () => await client.EvaluateSpliceAsync(new EvaluateSpliceRequest
        {
            ModelA = new ModelSpec { Model = "tiny-b" }, ModelB = new ModelSpec { Model = "tiny-a" }, LayerA = 1, LayerB = 1,
            Stitch = fit.Stitch, TokenIds = idsProto, BatchSize = 8,
        }));
        Assert.Equal(StatusCode.FailedPrecondition, swapped.StatusCode);
        Assert.Contains("width", swapped.Status.Detail);
        var activations = new ActivationsService.ActivationsServiceClient(server.Channel);
        foreach (var (model, run) in new[] { ("tiny-a", "A"), ("tiny-b", "B") })
        {
            var forward = await activations.ForwardAsync(new ForwardRequest { Model = new ModelSpec { Model = model }, TokenIds = idsProto, ReturnLoss = true });
            var row = splice.Rows.Single(r => r.Run == run);
            Assert.Equal(forward.MeanLoss, row.Ce, 6);
            Assert.Equal(forward.MeanLoss, row.CleanCe, 6);
        }
        // Independently: capture each model's stream at its splice point, apply the stitch's tensors here
        // (h P + b, row-vector convention), start the other model there; floors by replacing the stream
        // with zeros or with its mean over all tokens (Replace, not the Ablate path the evaluator uses).
        var stitch = (await TensorTransfer.ReadAsync(artifacts, fit.Stitch, file: "stitch.safetensors")).ToDictionary(t => t.Name, t => TorchTensors.ToTorch(t));
        async Task<(double Loss, torch.Tensor Stream)> Clean(string model, string hook)
        {
            var f = await activations.ForwardAsync(new ForwardRequest { Model = new ModelSpec { Model = model }, TokenIds = idsProto, ReturnLoss = true, Capture = { hook } });
            return (f.MeanLoss, TorchTensors.ToTorch(TensorCodec.FromProto(f.Captured[0])));
        }
        async Task<double> Started(string model, int layer, torch.Tensor residual) => (await activations.ForwardAsync(new ForwardRequest
        {
            Model = new ModelSpec { Model = model }, TokenIds = idsProto, ReturnLoss = true, StartLayer = layer,
            StartResidual = TensorCodec.ToProto(TorchTensors.ToHost(residual.contiguous(), "r")),
        })).MeanLoss;
        async Task<double> Replaced(string model, string hook, torch.Tensor value) => (await activations.ForwardAsync(new ForwardRequest
        {
            Model = new ModelSpec { Model = model }, TokenIds = idsProto, ReturnLoss = true,
            Interventions = { new Intervention { Hook = hook, Replace = TensorCodec.ToProto(TorchTensors.ToHost(value.contiguous(), "v")) } },
        })).MeanLoss;
        var (cleanA, hA) = await Clean("tiny-a", "blocks.1.hook_resid_pre");
        var (cleanB, hB) = await Clean("tiny-b", "blocks.2.hook_resid_pre");
        var aToB = await Started("tiny-b", 2, hA.matmul(stitch["P_up"]) + stitch["b_up"]);
        var bToA = await Started("tiny-a", 1, hB.matmul(stitch["P_down"]) + stitch["b_down"]);
        var zeroB = await Replaced("tiny-b", "blocks.2.hook_resid_pre", torch.zeros_like(hB));
        var meanB = await Replaced("tiny-b", "blocks.2.hook_resid_pre", hB.reshape(-1, hB.shape[^1]).to(torch.ScalarType.Float64).mean([0]).to(torch.ScalarType.Float32).expand_as(hB));
        var meanA = await Replaced("tiny-a", "blocks.1.hook_resid_pre", hA.reshape(-1, hA.shape[^1]).to(torch.ScalarType.Float64).mean([0]).to(torch.ScalarType.Float32).expand_as(hA));
        var rowAB = splice.Rows.Single(r => r.Run == "A->B");
        Assert.Equal(aToB, rowAB.Ce, 4);
        Assert.Equal(cleanB, rowAB.CleanCe, 5);
        Assert.Equal(zeroB, rowAB.ZeroAblationCe, 4);
        Assert.Equal(meanB, rowAB.MeanAblationCe, 4);
        Assert.Equal((meanB - aToB) / (meanB - cleanB), rowAB.LossRecovered, 3);
        var rowBA = splice.Rows.Single(r => r.Run == "B->A");
        Assert.Equal(bToA, rowBA.Ce, 4);
        Assert.Equal(meanA, rowBA.MeanAblationCe, 4);
        Assert.Equal((meanA - bToA) / (meanA - cleanA), rowBA.LossRecovered, 3);
        Assert.True(Math.Abs(rowBA.Ce - cleanA) > 1e-3, "B->A really ran a spliced stream");
    }
}
