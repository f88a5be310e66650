using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Sae.Storage;
using Stitching.Tests.Fixtures;
using Stitching.Tests.Sae;

namespace Stitching.Tests.Eval;

/// <summary>
/// EvaluateSae against an independent computation: numpy reconstructs the captured stream with the stored
/// SAE weights (TopK, b_dec subtracted) and computes the metrics from their formulas (variance around the
/// per-dimension mean, special tokens excluded); the spliced, ablated and KL numbers come from Forward calls
/// the test makes itself with numpy's reconstruction and Replace interventions.
/// </summary>
[Trait("Category", "Integration")]
public class SaeEvaluationTests
{
    private const string Numpy = """
sae_dir, capture_path, out_path, bos = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = json.load(open(os.path.join(sae_dir, 'cfg.json')))
w = read(os.path.join(sae_dir, 'sae_weights.safetensors'))
c = read(capture_path)
h, ids = c['h'], c['ids'].astype(np.int64)
flat = h.reshape(-1, h.shape[-1]); keep = ids.reshape(-1) != bos
x = flat[keep]
pre = (x - w['b_dec']) @ w['W_enc'] + w['b_enc']
f = np.zeros_like(pre)
top = np.argsort(-pre, axis=1)[:, :cfg['k']]
np.put_along_axis(f, top, np.maximum(np.take_along_axis(pre, top, axis=1), 0), axis=1)
xhat = f @ w['W_dec'] + w['b_dec']
full = flat.copy(); full[keep] = xhat
full.astype('<f4').tofile(out_path)
mean = x.mean(axis=0)
cos = (x * xhat).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(xhat, axis=1))
print(json.dumps({'mse': float(((x - xhat) ** 2).mean()), 'fvu': float(((x - xhat) ** 2).sum() / ((x - mean) ** 2).sum()),
  'cosine': float(cos.mean()), 'l0': float((f != 0).sum(1).mean()), 'dead': float(((f != 0).sum(0) == 0).mean()),
  'tokens': int(keep.sum()), 'mean': mean.tolist()}))
""";

    [Fact]
    public async Task Sae_evaluation_matches_numpy_and_forward_passes_made_here()
    {
        using var dir = new TempDir("eval-sae");
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var store = server.Server.Services.GetRequiredService<ArtifactStore>();
        var saeRef = new ArtifactRef { Kind = "sae", Id = "sae-eval-test" };
        using (var sae = SaeFixtures.RandomSae("topk", 32, 64, 4, true, 5)) SaeArtifacts.Save(store, saeRef, sae);
        var activations = new ActivationsService.ActivationsServiceClient(server.Channel);
        var model = new ModelSpec { Model = "tiny-a" };
        var info = await activations.DescribeModelAsync(new DescribeModelRequest { Model = model });
        Assert.True(info.BosId >= 0, "the tiny model's tokenizer has a BOS token");
        const int rows = 6, t = 12;
        var ids = Enumerable.Range(0, rows * t).Select(i => i % t == 0 ? info.BosId : 1 + (i * 37 + 11) % (TinyModels.VocabSize - 1)).ToArray();
        var idsProto = TensorCodec.ToProto(new HostTensor("token_ids", Stitching.Core.Tensors.DType.I32, [rows, t], MemoryMarshal.AsBytes(ids.AsSpan()).ToArray()));
        const string hook = "blocks.1.hook_resid_pre";

        var e = await new EvalService.EvalServiceClient(server.Channel).EvaluateSaeAsync(new EvaluateSaeRequest { Model = model, Sae = saeRef, Hook = hook, TokenIds = idsProto, BatchSize = 4 });

        // numpy: the reconstruction and the metrics from their formulas
        var clean = await activations.ForwardAsync(new Contracts.Activations.V1.ForwardRequest { Model = model, TokenIds = idsProto, Capture = { hook }, ReturnLoss = true });
        var capturePath = Path.Combine(dir.Path, "capture.safetensors");
        SafetensorsWriter.Write(capturePath, [TensorCodec.FromProto(clean.Captured[0]) is var h ? new HostTensor("h", h.DType, h.Shape, h.Data) : null!,
            new HostTensor("ids", Stitching.Core.Tensors.DType.I32, [rows, t], MemoryMarshal.AsBytes(ids.AsSpan()).ToArray())]);
        var saeDir = store.DirectoryOf(saeRef);
        var xhatPath = Path.Combine(dir.Path, "xhat.f32");
        using var json = JsonDocument.Parse(Python.Run(Python.SafetensorsReader + "\n" + Numpy, saeDir, capturePath, xhatPath, info.BosId.ToString(CultureInfo.InvariantCulture)));
        double N(string k) => json.RootElement.GetProperty(k).GetDouble();
        Assert.Equal(N("mse"), e.Mse, 5);
        Assert.Equal(N("fvu"), e.Fvu, 5);
        Assert.Equal(1 - N("fvu"), e.ExplainedVariance, 5);
        Assert.Equal(N("cosine"), e.Cosine, 5);
        Assert.Equal(N("l0"), e.L0, 9);
        Assert.Equal(N("dead"), e.DeadFraction, 9);
        Assert.Equal((long)N("tokens"), e.Tokens);
        Assert.Equal(rows * (t - 1), e.PredictedTokens);
        Assert.Equal(rows * (t - 1), (int)N("tokens")); // BOS positions left out of the reconstruction metrics
        Assert.Equal(64 - (long)Math.Round(N("dead") * 64), e.DensityCounts.Sum());

        // Forward passes made here: numpy's reconstruction spliced in, zeros, and the mean over non-special tokens.
        var xhat = File.ReadAllBytes(xhatPath);
        Tensor Value(byte[] bytes) => TensorCodec.ToProto(new HostTensor("v", Stitching.Core.Tensors.DType.F32, [rows, t, 32], bytes));
        async Task<Contracts.Activations.V1.ForwardResponse> Replaced(Tensor value, bool kl = false) => await activations.ForwardAsync(new Contracts.Activations.V1.ForwardRequest
        {
            Model = model, TokenIds = idsProto, ReturnLoss = true, ReturnKl = kl, Interventions = { new Intervention { Hook = hook, Replace = value } },
        });
        var spliced = await Replaced(Value(xhat), kl: true);
        var zero = await Replaced(Value(new byte[rows * t * 32 * 4]));
        var mean = json.RootElement.GetProperty("mean").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
        var meanAblated = await Replaced(TensorCodec.ToProto(HostTensor.FromFloats("m", mean, 32)));
        Assert.Equal(clean.MeanLoss, e.CeClean, 4);
        Assert.Equal(spliced.MeanLoss, e.CeSpliced, 4);
        Assert.Equal(spliced.MeanLoss - clean.MeanLoss, e.CeDelta, 4);
        Assert.Equal(zero.MeanLoss, e.CeZeroAblation, 4);
        Assert.Equal(meanAblated.MeanLoss, e.CeMeanAblation, 4);
        Assert.Equal((zero.MeanLoss - spliced.MeanLoss) / (zero.MeanLoss - clean.MeanLoss), e.LossRecovered, 3);
        Assert.Equal((meanAblated.MeanLoss - spliced.MeanLoss) / (meanAblated.MeanLoss - clean.MeanLoss), e.LossRecoveredMean, 3);
        Assert.Equal(spliced.MeanKl, e.Kl, 4);

        // The random floor (Table 2): the recipe's initial SAE of this shape with b_dec = the mean over these non-special
        // tokens, built here from that definition and evaluated as a stored SAE, gives the random path's numbers.
        var evalClient = new EvalService.EvalServiceClient(server.Channel);
        EvaluateSaeRequest RandomRequest(ulong seed) => new() { Model = model, Sae = saeRef, Hook = hook, TokenIds = idsProto, BatchSize = 4, Random = new RandomSae { Seed = seed } };
        var random = await evalClient.EvaluateSaeAsync(RandomRequest(11));
        var builtRef = new ArtifactRef { Kind = "sae", Id = "sae-random-built" };
        using (var stored = SaeArtifacts.Load(store, saeRef, "sae"))
        using (var built = Stitching.Sae.Training.SaeInitializer.Create(stored.Config with { ScalingFactor = 1 }, mean, 11))
            SaeArtifacts.Save(store, builtRef, built);
        var byHand = await evalClient.EvaluateSaeAsync(new EvaluateSaeRequest { Model = model, Sae = builtRef, Hook = hook, TokenIds = idsProto, BatchSize = 4 });
        Assert.Equal(byHand.Fvu, random.Fvu, 4);
        Assert.Equal(byHand.L0, random.L0, 6);
        Assert.Equal(byHand.CeSpliced, random.CeSpliced, 4);
        Assert.Equal(byHand.Kl, random.Kl, 4);
        Assert.Equal(byHand.DeadFraction, random.DeadFraction, 6);
        Assert.True(Math.Abs(random.Fvu - e.Fvu) > 1e-3, "the random path evaluates a new SAE, not the stored one");
        Assert.NotEqual(random.Fvu, (await evalClient.EvaluateSaeAsync(RandomRequest(12))).Fvu);

        // Wrong widths and unknown hooks are refused before any forward pass.
        using (var wide = SaeFixtures.RandomSae("topk", 48, 64, 4, true, 6)) SaeArtifacts.Save(store, new ArtifactRef { Kind = "sae", Id = "sae-wide" }, wide);
        var mismatch = await Assert.ThrowsAsync<RpcException>(() => new EvalService.EvalServiceClient(server.Channel).EvaluateSaeAsync(new EvaluateSaeRequest
        {
            Model = model, Sae = new ArtifactRef { Kind = "sae", Id = "sae-wide" }, Hook = hook, TokenIds = idsProto,
        }).ResponseAsync);
        Assert.Equal(StatusCode.FailedPrecondition, mismatch.StatusCode);
    }

    [Fact]
    public async Task Cli_eval_sae_on_local_files_prints_the_rpc_numbers_as_json()
    {
        using var dir = new TempDir("eval-cli");
        var saeDir = Path.Combine(dir.Path, "sae");
        using (var sae = SaeFixtures.RandomSae("topk", 32, 64, 4, true, 7)) Stitching.Sae.Interop.SaeLensFormat.WriteFolder(saeDir, sae);
        var ids = Enumerable.Range(0, 4 * 10).Select(i => 1 + (i * 13 + 5) % (TinyModels.VocabSize - 1)).ToArray();
        var tokens = Path.Combine(dir.Path, "tokens.safetensors");
        var host = new HostTensor("token_ids", Stitching.Core.Tensors.DType.I32, [4, 10], MemoryMarshal.AsBytes(ids.AsSpan()).ToArray());
        SafetensorsWriter.Write(tokens, [host]);
        var modelDir = Path.Combine(TinyModels.ModelsRoot, "tiny-a");
        var output = Python.RunProgram("dotnet", StitchCli.Dll(), "eval", "sae", "--model", modelDir, "--sae", saeDir, "--hook", "blocks.1.hook_resid_pre",
            "--tokens", tokens, "--json", "--store", Path.Combine(dir.Path, "store"));
        using var json = JsonDocument.Parse(output.Trim().Split('\n').Last());
        foreach (var key in new[] { "l0", "mse", "fvu", "explained_variance", "ce_clean", "ce_spliced", "ce_delta", "ce_zero_ablation", "loss_recovered", "kl", "dead_fraction" })
            Assert.True(json.RootElement.TryGetProperty(key, out _), $"missing {key}");

        // The same SAE and tokens through the RPC on another server give the same numbers.
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot, allowedRoots: [dir.Path]);
        var imported = await new SaeService.SaeServiceClient(server.Channel).ImportAsync(new ImportRequest { Path = saeDir });
        var e = await new EvalService.EvalServiceClient(server.Channel).EvaluateSaeAsync(new EvaluateSaeRequest
        {
            Model = new ModelSpec { Model = "tiny-a" }, Sae = imported.Ref, Hook = "blocks.1.hook_resid_pre", TokenIds = TensorCodec.ToProto(host),
        });
        Assert.Equal(e.Fvu, json.RootElement.GetProperty("fvu").GetDouble(), 9);
        Assert.Equal(e.CeSpliced, json.RootElement.GetProperty("ce_spliced").GetDouble(), 9);
        Assert.Equal(e.L0, json.RootElement.GetProperty("l0").GetDouble(), 9);
    }
}
