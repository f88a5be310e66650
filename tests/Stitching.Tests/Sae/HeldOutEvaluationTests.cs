using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Sae.Evaluation;
using Stitching.Sae.Interop;
using Stitching.Sae.WarmStart;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Sae;

/// <summary>The held-out curve that warm-start thresholds read, against numpy, and the threshold arithmetic.</summary>
[Trait("Category", "Integration")]
public class HeldOutEvaluationTests
{
    // numpy reads the stored SAE (cfg.json + weights) and the held-out set's shards itself, drops special rows,
    // takes the first N rows and computes FVU = sum ||x - x_hat||^2 / sum ||x - mean(x)||^2 with the scaling factor.
    private const string NumpyFvu = """
sae_dir, set_dir, hook, rows = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
cfg = json.load(open(os.path.join(sae_dir, 'cfg.json')))
w = read(os.path.join(sae_dir, 'sae_weights.safetensors'))
xs = []
for f in sorted(glob.glob(os.path.join(set_dir, 'shard-*.safetensors'))):
    t = read(f); xs.append(t[hook][t['special'] == 0])
x = np.concatenate(xs)[:rows]
s = cfg.get('scaling_factor', 1.0) if cfg['normalize_activations'] == 'expected_average_only_in' else 1.0
xin = s * x - (w['b_dec'] if cfg['apply_b_dec_to_input'] else 0)
pre = xin @ w['W_enc'] + w['b_enc']
k = cfg['k']
f = np.zeros_like(pre)
top = np.argsort(-pre, axis=1)[:, :k]
np.put_along_axis(f, top, np.maximum(np.take_along_axis(pre, top, axis=1), 0), axis=1)
xhat = (f @ w['W_dec'] + w['b_dec']) / s
fvu = ((x - xhat) ** 2).sum() / ((x - x.mean(axis=0)) ** 2).sum()
print(repr(float(fvu)), repr(float((f != 0).sum(axis=1).mean())), x.shape[0])
""";

    [Fact]
    public async Task Held_out_explained_variance_equals_numpy_on_the_stored_sae_and_set()
    {
        await using var server = await TestServer.StartAsync(redis: true);
        var store = server.Server.Services.GetRequiredService<ArtifactStore>();
        const int d = 16;
        var train = SaeFixtures.WriteActivationSet(store, "as-train", "blocks.2.hook_resid_pre", SaeFixtures.Planted(6000, d, 24, 2, 11).Rows, d, 2000);
        var held = SaeFixtures.WriteActivationSet(store, "as-held", "blocks.2.hook_resid_pre", SaeFixtures.Planted(3000, d, 24, 2, 12).Rows, d, 1000);
        var client = new SaeService.SaeServiceClient(server.Channel);
        var op = await client.TrainAsync(new TrainRequest
        {
            ActivationSet = train, EvalActivationSet = held, EvalTokens = 2500, EvalEvery = 20,
            Sae = new SaeSpec { Architecture = "topk", DSae = 40, K = 3 }, Tokens = 128 * 60, BatchSize = 128, Lr = 3e-3, Seed = 3, LogEvery = 10,
        });
        var done = await OperationWaiter.SucceededAsync(server.Channel, op.Id);
        var sae = done.Result.Unpack<TrainResult>().Sae;
        var log = Stitching.Sae.Storage.SaeArtifacts.HeldOut(store, sae.Ref)!;
        // before training, steps 1..16, every 20 steps, and the last (60): 0..16, 20, 40, 60
        Assert.Equal([0L, .. Enumerable.Range(1, 16).Select(i => (long)i), 20, 40, 60], log.Rows.Select(r => r.Step));
        Assert.Equal(SaeConfigOf(store, sae.Ref).ScalingFactor, sae.ScalingFactor);
        Assert.NotEqual(1.0, sae.ScalingFactor);
        Assert.Equal("expected_average_only_in", sae.NormalizeActivations);
        Assert.True(sae.ApplyBDecToInput, "TopK defaults to subtracting b_dec");

        var outp = Python.Run(Python.SafetensorsReader + "\n" + NumpyFvu, Path.Combine(store.Root, sae.Ref.Kind, sae.Ref.Id), Path.Combine(store.Root, held.Kind, held.Id), "blocks.2.hook_resid_pre", "2500").Split(' ');
        var (fvu, l0, rows) = (double.Parse(outp[0], CultureInfo.InvariantCulture), double.Parse(outp[1], CultureInfo.InvariantCulture), int.Parse(outp[2]));
        Assert.Equal(2500, rows);
        Assert.True(Math.Abs(log.Rows[^1].Fvu - fvu) < 1e-5, $"ours {log.Rows[^1].Fvu}, numpy {fvu}");
        Assert.Equal(l0, log.Rows[^1].L0, 6);
        Assert.Equal(log.Rows[^1].Fvu, sae.Metrics["heldout_fvu"]);
        Assert.True(log.Rows[^1].Fvu < log.Rows[0].Fvu, "training improved the held-out FVU");
    }

    private static Stitching.Sae.Weights.SaeConfig SaeConfigOf(ArtifactStore store, ArtifactRef r) =>
        SaeLensFormat.ParseConfig(store.ReadAllBytes(r, SaeLensFormat.ConfigFile), r.Id, "sae");

    [Fact]
    [Trait("Category", "Unit")]
    public void Flops_to_threshold_interpolates_between_the_evaluations_around_the_crossing()
    {
        var rows = new List<EvalRow> { new(0, 0, 10, 0, 0.9, 0), new(1, 1, 20, 0, 0.5, 0), new(2, 2, 40, 0, 0.1, 0) };
        Assert.Equal(10, WarmStartComparison.FlopsToThreshold(rows, 0.05));       // reached before training
        Assert.Equal(15, WarmStartComparison.FlopsToThreshold(rows, 0.3)!.Value, 9); // EV 0.1 -> 0.5 over 10 -> 20 FLOPs
        Assert.Equal(30, WarmStartComparison.FlopsToThreshold(rows, 0.7)!.Value, 9);
        Assert.Null(WarmStartComparison.FlopsToThreshold(rows, 0.95));
        var curves = WarmStartComparison.Curves.HeldOut(rows, [new(0, 0, 5, 0, 0.4, 0), new(1, 1, 25, 0, 0.2, 0)]);
        var t = curves.Thresholds([0.5], [0.5]).ToList();
        Assert.Equal(0.9 * 0.5, t[1].ExplainedVariance, 12); // half of scratch's final EV (0.9)
        Assert.Equal(5, t[1].WarmFlops!.Value, 9);            // the warm run starts above it
        Assert.Equal((20 - 5.0) / 20, t[0].RelativeSaving, 9);  // EV 0.5: scratch at 20, warm at 5
    }
}
