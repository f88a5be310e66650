using Microsoft.Extensions.DependencyInjection;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Metrics;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;
using Stitching.Tests.Fixtures;
using Stitching.Tests.Sae;
using Xunit.Abstractions;
using static TorchSharp.torch;
using S = Stitching.Eval.Steering.SteeringEvaluator;

namespace Stitching.Tests.Eval;

/// <summary>
/// EvaluateSteering end to end on the tiny models and real text. The directions, clamp values and the moved
/// direction are recomputed here from Forward captures the test makes itself (rows of `context` tokens of
/// every training text), and with A = B and an identity stitch the transferred condition must generate
/// exactly what B's own direction generates.
/// </summary>
[Trait("Category", "Integration")]
public class SteeringEvaluationTests(ITestOutputHelper output)
{
    private const int Context = 48;

    private static ProbeDataset Paragraphs()
    {
        var set = new ProbeDataset { ClassNames = { "readme", "metrics" } };
        foreach (var (file, label) in new[] { ("README.txt", 0), ("docs-metrics.txt", 1) })
            foreach (var p in File.ReadAllText(TinyModels.CorpusFile(file)).Split("\n\n").Where(p => p.Trim().Length > 40))
                set.Examples.Add(new LabelledText { Text = p, Label = label });
        return set;
    }

    /// <summary>Class means of the hook over every token of every train text's rows, computed with one Forward per row.</summary>
    private static async Task<(double[] Target, double[] Baseline)> MeansAsync(TestServer server, ProbeDataset set, string model, string hook)
    {
        var client = new ActivationsService.ActivationsServiceClient(server.Channel);
        double[]? t = null, b = null;
        long nt = 0, nb = 0;
        for (var i = 0; i < set.Examples.Count; i++)
        {
            if (i % 5 >= 3) continue; // the train split by position
            var ids = (await client.TokenizeAsync(new TokenizeRequest { Model = new ModelSpec { Model = model }, Texts = { set.Examples[i].Text }, BosPolicy = BosPolicy.Never })).Texts[0].Ids.ToArray();
            foreach (var row in ids.Chunk(Context))
            {
                var f = await client.ForwardAsync(new Contracts.Activations.V1.ForwardRequest
                {
                    Model = new ModelSpec { Model = model }, Capture = { hook },
                    TokenIds = TensorCodec.ToProto(new HostTensor("token_ids", Stitching.Core.Tensors.DType.I32, [1, row.Length], System.Runtime.InteropServices.MemoryMarshal.AsBytes(row.AsSpan()).ToArray())),
                });
                var h = TensorCodec.FromProto(f.Captured[0]).ToFloats();
                var d = h.Length / row.Length;
                var target = set.Examples[i].Label == 1;
                ref var sum = ref target ? ref t : ref b;
                sum ??= new double[d];
                for (var j = 0; j < h.Length; j++) sum[j % d] += h[j];
                if (target) nt += row.Length; else nb += row.Length;
            }
        }
        return (t!.Select(x => x / nt).ToArray(), b!.Select(x => x / nb).ToArray());
    }

    private static Task<SteeringEvaluation> RunAsync(TestServer server, EvaluateSteeringRequest request) =>
        OperationWaiter.ResultAsync<SteeringEvaluation>(server.Channel, new EvalService.EvalServiceClient(server.Channel).EvaluateSteeringAsync(request).ResponseAsync, TimeSpan.FromMinutes(3));

    [Fact]
    public async Task Directions_match_captures_made_here_and_an_identity_transfer_generates_like_the_native_direction()
    {
        await using var server = await TestServer.StartAsync(redis: false, testJobs: false, modelsRoot: TinyModels.ModelsRoot);
        var store = server.Server.Services.GetRequiredService<ArtifactStore>();
        var random = SaeFixtures.RandomStitch(32, 48, 5);
        var stitch = SaeFixtures.SaveStitch(store, "st-steer", random);
        var set = Paragraphs();
        const string hookA = "blocks.1.hook_resid_pre", hookB = "blocks.2.hook_resid_pre";
        var e = await RunAsync(server, new EvaluateSteeringRequest
        {
            ModelA = new ModelSpec { Model = "tiny-a" }, ModelB = new ModelSpec { Model = "tiny-b" }, HookA = hookA, HookB = hookB, Stitch = stitch,
            Dataset = set, Target = 1, Prompts = 6, NewTokens = 6, Context = Context,
        });
        foreach (var c in e.Conditions) output.WriteLine($"{c.Name}: {c.Successes}/{c.Trials} [{c.CiLow:F3}, {c.CiHigh:F3}] {string.Join(" | ", c.Samples)}");
        output.WriteLine($"judge {e.JudgeAccuracy:F3} over {e.JudgeTest}; gap {e.TransferGap}");

        var (ta, ba) = await MeansAsync(server, set, "tiny-a", hookA);
        var diff = ta.Zip(ba).Select(p => p.First - p.Second).ToArray();
        var norm = Math.Sqrt(diff.Sum(x => x * x));
        var v = diff.Select(x => x / norm).ToArray();
        for (var j = 0; j < v.Length; j++) Assert.Equal(v[j], e.VectorA[j], 4);
        Assert.Equal(ta.Zip(v).Sum(p => p.First * p.Second), e.ZA, 3);
        // v' = normalise(v P_up) from the stitch's matrix, z' = <mu_target(B), v'>
        var pUp = random.PUp.to(ScalarType.Float64).data<double>().ToArray();
        var moved = Enumerable.Range(0, 48).Select(k => Enumerable.Range(0, 32).Sum(j => e.VectorA[j] * pUp[j * 48 + k])).ToArray();
        var movedNorm = Math.Sqrt(moved.Sum(x => x * x));
        for (var k = 0; k < 48; k++) Assert.Equal(moved[k] / movedNorm, e.VectorTransferred[k], 4);
        var (tb, _) = await MeansAsync(server, set, "tiny-b", hookB);
        Assert.Equal(tb.Zip(e.VectorTransferred).Sum(p => p.First * p.Second), e.ZTransferred, 3);

        Assert.Equal(new[] { S.A, S.ASteered, S.B, S.BNative, S.BTransferred }, e.Conditions.Select(c => c.Name));
        foreach (var c in e.Conditions)
        {
            Assert.Equal(6, c.Trials);
            Assert.Equal(Intervals.ClopperPearson(c.Successes, c.Trials), (c.CiLow, c.CiHigh));
        }
        Assert.InRange(e.JudgeAccuracy, 0, 1);

        // A = B, identity stitch: the moved direction is B's own, so are the generations
        var identity = SaeFixtures.SaveStitch(store, "st-steer-identity", new AffineStitch(eye(32), zeros(32), eye(32), zeros(32)));
        var same = await RunAsync(server, new EvaluateSteeringRequest
        {
            ModelA = new ModelSpec { Model = "tiny-a" }, ModelB = new ModelSpec { Model = "tiny-a" }, HookA = hookA, HookB = hookA, Stitch = identity,
            Dataset = set, Target = 1, Prompts = 4, NewTokens = 6, Context = Context,
        });
        var byName = same.Conditions.ToDictionary(c => c.Name);
        Assert.Equal(byName[S.BNative].Samples, byName[S.BTransferred].Samples);
        Assert.Equal(byName[S.ASteered].Samples, byName[S.BNative].Samples);
        Assert.Equal(byName[S.A].Samples, byName[S.B].Samples);
        Assert.NotEqual(byName[S.B].Samples, byName[S.BNative].Samples); // the clamp changes what is generated
    }
}
