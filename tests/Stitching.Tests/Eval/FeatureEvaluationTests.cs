using Microsoft.Extensions.DependencyInjection;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Stitches;
using Stitching.Sae.Storage;
using Stitching.Tests.Fixtures;
using Stitching.Tests.Sae;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Stitching.Tests.Eval;

/// <summary>
/// EvaluateFeatures over gRPC on the tiny models and the Brown test split. With A = B and an identity stitch a
/// latent's attribution on B is the very same stream as on A, so every correlation (real and random SAE) must
/// be 1; with two different models every group is a set of correlations in [-1, 1] and every latent is
/// classified once.
/// </summary>
[Trait("Category", "Integration")]
public class FeatureEvaluationTests(ITestOutputHelper output)
{
    private static Task<FeatureEvaluation> RunAsync(TestServer server, EvaluateFeaturesRequest request) =>
        OperationWaiter.ResultAsync<FeatureEvaluation>(server.Channel, new EvalService.EvalServiceClient(server.Channel).EvaluateFeaturesAsync(request).ResponseAsync, TimeSpan.FromMinutes(3));

    [Fact]
    public async Task Identity_transfer_correlates_perfectly_and_different_models_give_bounded_groups()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var store = server.Server.Services.GetRequiredService<ArtifactStore>();
        var sae = new SaeService.SaeServiceClient(server.Channel);
        var saeRef = new ArtifactRef { Kind = "sae", Id = "sae-features-a" };
        using (var random = SaeFixtures.RandomSae("topk", 32, 48, 6, true, 21)) SaeArtifacts.Save(store, saeRef, random);

        var identity = SaeFixtures.SaveStitch(store, "st-features-identity", new AffineStitch(eye(32), zeros(32), eye(32), zeros(32)));
        var same = await sae.TransferAsync(new TransferRequest { Sae = saeRef, Stitch = identity, Model = "tiny-a", Hook = "blocks.1.hook_resid_pre" });
        var e = await RunAsync(server, new EvaluateFeaturesRequest
        {
            ModelA = new ModelSpec { Model = "tiny-a" }, ModelB = new ModelSpec { Model = "tiny-a" }, SaeA = saeRef, SaeTransferred = same.Ref, Stitch = identity,
            MaxTokens = 2048, Context = 64, Sentences = 8, MinActive = 3,
        });
        foreach (var g in e.Groups) output.WriteLine($"{g.Group}: n={g.Latents} mean {g.Mean:F6} median {g.Median:F6}");
        var all = e.Groups.Single(g => g.Group == "transferred");
        Assert.True(all.Latents > 5, $"only {all.Latents} latents were active enough");
        Assert.Equal(1.0, all.Mean, 6);
        Assert.Equal(1.0, e.Groups.Single(g => g.Group == "random SAE").Mean, 6);
        Assert.Equal(48, e.Structural + e.Semantic + e.Unclassified);
        Assert.True(e.Sentences > 0);

        var stitch = SaeFixtures.SaveStitch(store, "st-features", SaeFixtures.RandomStitch(32, 48, 4));
        var moved = await sae.TransferAsync(new TransferRequest { Sae = saeRef, Stitch = stitch, Model = "tiny-b", Hook = "blocks.2.hook_resid_pre" });
        var d = await RunAsync(server, new EvaluateFeaturesRequest
        {
            ModelA = new ModelSpec { Model = "tiny-a" }, ModelB = new ModelSpec { Model = "tiny-b" }, SaeA = saeRef, SaeTransferred = moved.Ref, Stitch = stitch,
            MaxTokens = 2048, Context = 64, Sentences = 8, MinActive = 3,
        });
        foreach (var g in d.Groups)
        {
            output.WriteLine($"{g.Group}: n={g.Latents} mean {g.Mean:F3} q10 {g.Q10:F3} q90 {g.Q90:F3}");
            Assert.Equal(g.Latents, g.Histogram.Sum());
            if (g.Latents > 0) { Assert.InRange(g.Mean, -1, 1); Assert.True(g.Q10 <= g.Median && g.Median <= g.Q90); }
        }
        Assert.True(d.Groups.Single(g => g.Group == "structural").Latents + d.Groups.Single(g => g.Group == "semantic").Latents
            <= d.Groups.Single(g => g.Group == "transferred").Latents);

        // Entropy latents against numpy: W_U from the checkpoints' embed_out, the SAEs' decoders from their stored files.
        using var fractions = System.Text.Json.JsonDocument.Parse(Python.Run(Python.SafetensorsReader + "\n" + EntropyNumpy,
            Path.Combine(TinyModels.ModelsRoot, "tiny-a"), Path.Combine(TinyModels.ModelsRoot, "tiny-b"), store.DirectoryOf(saeRef), store.DirectoryOf(moved.Ref)));
        double N(string k) => fractions.RootElement.GetProperty(k).GetDouble();
        var h = d.Entropy;
        Assert.Equal((1, 1), (h.SubspaceA, h.SubspaceB)); // ceil(2% of 32) and of 48
        Assert.Equal(N("mean_a"), h.MeanA, 6);
        Assert.Equal(N("mean_b"), h.MeanB, 6);
        Assert.Equal(N("correlation"), h.Correlation, 5);
        Assert.Equal((int)N("latents_a"), h.LatentsA);
        Assert.Equal((int)N("kept_b"), h.KeptB);
        Assert.Equal(fractions.RootElement.GetProperty("top").EnumerateArray().Select(x => x.GetInt32()), h.Top.Select(t => t.Latent));
        Assert.Equal(N("top_b"), h.Top[0].FractionB, 6);
        Assert.InRange(h.RandomMeanA, 0, 1);
        // With A = B and the identity stitch every twin keeps its fraction.
        Assert.Equal(1.0, e.Entropy.Correlation, 6);
        Assert.Equal(e.Entropy.LatentsA, e.Entropy.KeptB);
    }

    private const string EntropyNumpy = """
model_a, model_b, sae_a, sae_b = sys.argv[1:5]
def fractions(model, sae):
    w_u = read(glob.glob(os.path.join(model, '*.safetensors'))[0])['embed_out.weight'].astype(np.float64).T   # [d, V]
    u, s, _ = np.linalg.svd(w_u, full_matrices=False)
    r = max(1, int(np.ceil(0.02 * w_u.shape[0])))
    basis = u[:, np.argsort(s)[:r]]
    dec = read(os.path.join(sae, 'sae_weights.safetensors'))['W_dec'].astype(np.float64)
    return ((dec @ basis) ** 2).sum(1) / (dec ** 2).sum(1)
a, b = fractions(model_a, sae_a), fractions(model_b, sae_b)
ent = a >= 0.5
order = np.argsort(-a, kind='stable')[:10]
print(json.dumps({'mean_a': a.mean(), 'mean_b': b.mean(), 'correlation': float(np.corrcoef(a, b)[0, 1]),
  'latents_a': int(ent.sum()), 'kept_b': int((ent & (b >= 0.5)).sum()), 'top': [int(i) for i in order], 'top_b': float(b[order[0]])}))
""";
}
