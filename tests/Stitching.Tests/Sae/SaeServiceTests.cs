using Stitching.Core.Stitches;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Sae.Interop;
using Stitching.Sae.Storage;
using Stitching.Tests.Fixtures;
using static TorchSharp.torch;

namespace Stitching.Tests.Sae;

/// <summary>The sae service over real gRPC: training as an operation, restart resume, transfer, warm start, interop.</summary>
[Trait("Category", "Integration")]
public class SaeServiceTests
{
    private const int D = 16, Latents = 48;

    private static ArtifactStore Store(TestServer s) => s.Server.Services.GetRequiredService<ArtifactStore>();

    private static ArtifactRef PlantedSet(TestServer s, string id, int seed, int n = 12000)
    {
        var (rows, _) = SaeFixtures.Planted(n, D, 24, 2, seed);
        var r = new ArtifactRef { Kind = "activation-set", Id = id };
        return Store(s).Exists(r) ? r : SaeFixtures.WriteActivationSet(Store(s), id, "blocks.2.hook_resid_pre", rows, D, 3000);
    }

    private static TrainRequest Request(ArtifactRef set, long tokens, long checkpointEvery = 50) => new()
    {
        ActivationSet = set, Sae = new SaeSpec { Architecture = "topk", DSae = Latents, K = 2 },
        Tokens = tokens, BatchSize = 128, Lr = 3e-3, Seed = 7, CheckpointEvery = checkpointEvery, LogEvery = 5,
    };

    private static Task<Operation> FinishAsync(TestServer s, string id) => OperationWaiter.SucceededAsync(s.Channel, id);

    [Fact]
    public async Task Train_streams_progress_and_stores_a_SaeLens_sae_with_its_log()
    {
        using var dir = new TempDir("sae-export");
        await using var server = await TestServer.StartAsync(redis: true, allowedRoots: [dir.Path]);
        var client = new SaeService.SaeServiceClient(server.Channel);
        var set = PlantedSet(server, "as-planted", 3);
        var op = await client.TrainAsync(Request(set, tokens: 128 * 400));
        var seen = new List<Operation>();
        using (var call = new OperationsService.OperationsServiceClient(server.Channel).WatchOperation(new WatchOperationRequest { Id = op.Id }))
            await foreach (var o in call.ResponseStream.ReadAllAsync()) seen.Add(o);
        var final = seen[^1];
        Assert.Equal(OperationState.Succeeded, final.State);
        Assert.Contains(seen, o => o.Progress.Metrics.ContainsKey("fvu") && o.Progress.Metrics.ContainsKey("l0") && o.Progress.Metrics.ContainsKey("dead_fraction") && o.Progress.Flops > 0);
        var result = final.Result.Unpack<TrainResult>();
        Assert.Equal(400, result.Steps);
        Assert.Equal(400 * 10.0 * 128 * D * Latents, result.Flops);
        var info = await client.DescribeAsync(new DescribeRequest { Sae = result.Sae.Ref });
        Assert.Equal(("topk", D, Latents, 2, "blocks.2.hook_resid_pre", "planted"), (info.Architecture, info.DIn, info.DSae, info.K, info.Hook, info.Model));
        Assert.True(info.Metrics["fvu"] < 0.2, $"fvu {info.Metrics["fvu"]}");
        var log = SaeArtifacts.Log(Store(server), info.Ref)!;
        Assert.Equal(80, log.Rows.Count);
        Assert.True(log.Rows.Zip(log.Rows.Skip(1)).All(p => p.Second.Flops > p.First.Flops));

        // Encode / Decode agree with the stored weights; the special (BOS) rows with value 1000 never reached training.
        var x = SaeFixtures.Planted(10, D, 24, 2, 99).Rows;
        var enc = await client.EncodeAsync(new EncodeRequest { Sae = info.Ref, Activations = TensorCodec.ToProto(HostTensor.FromFloats("x", x, 10, D)) });
        var latents = TensorCodec.FromProto(enc.Latents);
        Assert.Equal([10L, Latents], latents.Shape);
        Assert.All(Enumerable.Range(0, 10), t => Assert.Equal(2, latents.ToFloats().Skip(t * Latents).Take(Latents).Count(v => v != 0)));
        var dec = await client.DecodeAsync(new DecodeRequest { Sae = info.Ref, Latents = enc.Latents });
        using var sae = SaeArtifacts.Load(Store(server), info.Ref, "sae");
        Assert.True(SaeFixtures.MaxAbsDiff(sae.Forward(tensor(x, [10, D])), TorchTensors.ToTorch(TensorCodec.FromProto(dec.Reconstruction))) < 1e-5);
        Assert.True(sae.BDec.abs().max().item<float>() < 50, "b_dec was initialised from special rows");

        // Export -> Import through the RPCs is lossless: export folds the input scaling into the weights
        // (normalize_activations "none", as SAELens saves), so the weights are the folded ones and the function is the same.
        var exportDir = Path.Combine(dir.Path, "exported");
        await client.ExportAsync(new ExportRequest { Sae = info.Ref, Path = exportDir });
        var again = await Assert.ThrowsAsync<RpcException>(() => client.ExportAsync(new ExportRequest { Sae = info.Ref, Path = exportDir }).ResponseAsync);
        Assert.Equal(StatusCode.AlreadyExists, again.StatusCode); // nothing already there is overwritten
        var imported = await client.ImportAsync(new ImportRequest { Path = exportDir });
        using var back = SaeArtifacts.Load(Store(server), imported.Ref, "sae");
        using var folded = sae.WithScalingFactor(1);
        Assert.Equal(1.0, back.Config.ScalingFactor);
        foreach (var ((n, a), (_, b)) in folded.Named().Zip(back.Named())) Assert.Equal(SaeFixtures.Floats(a), SaeFixtures.Floats(b));
        var probe = tensor(x, [10, D]);
        Assert.True(SaeFixtures.MaxAbsDiff(sae.Forward(probe), back.Forward(probe)) < 1e-4);

        var bad = await Assert.ThrowsAsync<RpcException>(async () => await client.TrainAsync(new TrainRequest { ActivationSet = set }));
        Assert.Equal(StatusCode.InvalidArgument, bad.StatusCode);
        Assert.Contains("d_sae", bad.Status.Detail);
    }

    [Fact]
    public async Task Training_resumes_after_a_host_restart_and_ends_where_an_uninterrupted_run_ends()
    {
        using var storeDir = new TempDir("sae-restart");
        var request = Request(new ArtifactRef { Kind = "activation-set", Id = "as-planted" }, tokens: 128 * 1500, checkpointEvery: 100);
        string interrupted;
        await using (var first = await TestServer.StartAsync(storeDir.Path, redis: false))
        {
            PlantedSet(first, "as-planted", 3);
            interrupted = (await new SaeService.SaeServiceClient(first.Channel).TrainAsync(request)).Id;
            using var call = new OperationsService.OperationsServiceClient(first.Channel).WatchOperation(new WatchOperationRequest { Id = interrupted });
            await foreach (var o in call.ResponseStream.ReadAllAsync())
                if (o.Progress?.Step >= 250) break;
        } // hard stop mid-training: the record stays RUNNING and checkpoints stay in the store
        Assert.True(Directory.EnumerateDirectories(Path.Combine(storeDir.Path, "sae-checkpoint")).Any());

        await using var second = await TestServer.StartAsync(storeDir.Path, redis: false);
        var resumed = await FinishAsync(second, interrupted);
        Assert.Equal(2, resumed.Attempt);
        var reference = await FinishAsync(second, (await new SaeService.SaeServiceClient(second.Channel).TrainAsync(request)).Id);
        Assert.Equal(1, reference.Attempt);

        var a = resumed.Result.Unpack<TrainResult>();
        var b = reference.Result.Unpack<TrainResult>();
        Assert.Equal(b.Flops, a.Flops);
        Assert.Equal(b.Tokens, a.Tokens);
        using var saeA = SaeArtifacts.Load(Store(second), a.Sae.Ref, "sae");
        using var saeB = SaeArtifacts.Load(Store(second), b.Sae.Ref, "sae");
        foreach (var ((name, x), (_, y)) in saeA.Named().Zip(saeB.Named()))
            Assert.True(SaeFixtures.MaxAbsDiff(x, y) < 1e-4, $"{name} differs by {SaeFixtures.MaxAbsDiff(x, y)}");
        Assert.Equal(SaeArtifacts.Log(Store(second), a.Sae.Ref)!.Rows.Count, SaeArtifacts.Log(Store(second), b.Sae.Ref)!.Rows.Count);
        Assert.Empty(Directory.EnumerateDirectories(Path.Combine(storeDir.Path, "sae-checkpoint")));
    }

    [Fact]
    public async Task Transfer_then_warm_start_counts_stitch_flops_and_compare_reports_savings()
    {
        await using var server = await TestServer.StartAsync(redis: false);
        var client = new SaeService.SaeServiceClient(server.Channel);
        var set = PlantedSet(server, "as-planted", 3);
        var source = (await FinishAsync(server, (await client.TrainAsync(Request(set, 128 * 300))).Id)).Result.Unpack<TrainResult>().Sae;

        // An (almost) identity stitch A -> B stored as a "stitch" artifact whose ledger holds its fitting FLOPs.
        var stitchRef = new ArtifactRef { Kind = "stitch", Id = "st-test" };
        using (var w = Store(server).Create(stitchRef))
        {
            var s = new AffineStitch(eye(D) * 1.5, zeros(D), eye(D) / 1.5, zeros(D));
            w.WriteFile("stitch.safetensors", SaeFixtures.StitchBytes(s));
            w.Manifest.Ledger = new FlopLedger { Entries = { new LedgerEntry { Phase = "stitch.fit", Flops = 1e6, Tokens = 500 } }, TotalFlops = 1e6 };
            w.Commit();
        }
        var transferred = await client.TransferAsync(new TransferRequest { Sae = source.Ref, Stitch = stitchRef, RenormalizeDecoder = true, Model = "planted-b" });
        Assert.Equal([("stitch.fit", 1e6)], transferred.Ledger.Entries.Select(e => (e.Phase, e.Flops)));
        Assert.Equal("planted-b", transferred.Model);

        var scratch = (await FinishAsync(server, (await client.TrainAsync(Request(set, 128 * 200))).Id)).Result.Unpack<TrainResult>().Sae;
        var warmRequest = Request(set, 128 * 200);
        warmRequest.Init = transferred.Ref;
        var warmResult = (await FinishAsync(server, (await client.TrainAsync(warmRequest)).Id)).Result.Unpack<TrainResult>();
        var warm = warmResult.Sae;
        // docs/flops.md: a step on m tokens is forward x W_enc and f W_dec (2 matmuls of 2 m d M) and backward
        // dW_dec, df, dW_enc (3 more): 10 m d M.
        var training = 200 * 10.0 * 128 * D * Latents;
        Assert.Equal([("stitch.fit", 1e6), ("sae.train", training)], warm.Ledger.Entries.Select(e => (e.Phase, e.Flops)));
        Assert.Equal(1e6 + training, warm.Ledger.TotalFlops);
        Assert.Equal(1e6 + training, warmResult.Flops);
        Assert.Equal(1e6 + training, warm.Metrics["flops"]);
        Assert.Equal([("sae.train", training)], scratch.Ledger.Entries.Select(e => (e.Phase, e.Flops)));

        var cmp = await client.CompareAsync(new CompareRequest { Scratch = scratch.Ref, Warm = warm.Ref, Thresholds = { 0.5, 0.8 } });
        Assert.Equal(4, cmp.Rows.Count); // the two given, then 90% and 95% of scratch's final EV
        Assert.Equal([false, false, true, true], cmp.Rows.Select(r => r.RelativeToScratchFinal));
        Assert.Equal(1e6, cmp.StitchFlops);
        Assert.Equal("training_batch", cmp.MeasuredOn);
        // Independently of WarmStartComparison: read both training logs as JSON, average explained variance
        // over the last 5 log rows, take the ledger FLOPs of the first row at or above each threshold.
        var (scratchLog, warmLog) = (LogOf(server, scratch.Ref), LogOf(server, warm.Ref));
        Assert.Equal(1e6 + 5 * 10.0 * 128 * D * Latents, warmLog[0].Flops); // the first log row (step 5) sits on the stitch's FLOPs
        var scratchFinal = Moving(scratchLog)[^1];
        Assert.Equal(scratchFinal, cmp.ScratchFinalExplainedVariance, 12);
        foreach (var row in cmp.Rows)
        {
            var ev = row.RelativeToScratchFinal ? row.Threshold * scratchFinal : row.Threshold;
            var (s0, w0) = (FirstReaching(scratchLog, ev), FirstReaching(warmLog, ev));
            Assert.Equal(s0 ?? 0, row.ScratchFlops);
            Assert.Equal(w0 ?? 0, row.WarmFlops);
            if (s0 is { } sf && w0 is { } wf) Assert.Equal((sf - wf) / sf, row.RelativeSaving, 12);
            else Assert.True(double.IsNaN(row.RelativeSaving));
        }
        var first = cmp.Rows[0];
        Assert.True(first.WarmFlops > 0 && first.WarmFlops < first.ScratchFlops, "a warm start from a well-trained SAE through an exact stitch must reach 50% sooner");
        Assert.True(cmp.WarmDecoderCosine > cmp.ScratchDecoderCosine, $"warm rows rotate less: {cmp.WarmDecoderCosine} vs {cmp.ScratchDecoderCosine}");
        // The power law, fitted here by least squares of log FVU on log FLOPs over the log rows.
        var pts = scratchLog.Where(r => r.Flops > 0 && r.Fvu > 0).Select(r => (X: Math.Log(r.Flops), Y: Math.Log(r.Fvu))).ToList();
        var (mx, my) = (pts.Average(p => p.X), pts.Average(p => p.Y));
        var slope = pts.Sum(p => (p.X - mx) * (p.Y - my)) / pts.Sum(p => (p.X - mx) * (p.X - mx));
        Assert.Equal(-slope, cmp.ScratchFit.Beta, 9);
        Assert.Equal(pts.Count, cmp.ScratchFit.Points);
    }

    private sealed record LogRow(double Flops, double Fvu);

    private static List<LogRow> LogOf(TestServer server, ArtifactRef sae)
    {
        using var json = System.Text.Json.JsonDocument.Parse(Store(server).ReadAllBytes(sae, "training_log.json"));
        double Get(System.Text.Json.JsonElement e, string name) =>
            e.EnumerateObject().First(p => string.Equals(p.Name, name, StringComparison.OrdinalIgnoreCase)).Value.GetDouble();
        return json.RootElement.EnumerateArray().Select(e => new LogRow(Get(e, "flops"), Get(e, "fvu"))).ToList();
    }

    private static double[] Moving(List<LogRow> log) =>
        log.Select((_, i) => log.Skip(Math.Max(0, i - 4)).Take(Math.Min(i + 1, 5)).Average(r => 1 - r.Fvu)).ToArray();

    private static double? FirstReaching(List<LogRow> log, double ev)
    {
        var ma = Moving(log);
        for (var i = 0; i < log.Count; i++) if (ma[i] >= ev) return log[i].Flops;
        return null;
    }

    [Fact]
    public async Task Cli_transfers_local_SaeLens_folders_through_a_stitch_file()
    {
        using var dir = new TempDir("sae-cli");
        var (saeDir, outDir, stitchFile) = (Path.Combine(dir.Path, "a"), Path.Combine(dir.Path, "b"), Path.Combine(dir.Path, "stitch.safetensors"));
        using var sae = SaeFixtures.RandomSae("jumprelu", 8, 20, 0, true, 3);
        SaeLensFormat.WriteFolder(saeDir, sae);
        var stitch = SaeFixtures.RandomStitch(8, 12, 4);
        File.WriteAllBytes(stitchFile, SaeFixtures.StitchBytes(stitch));
        var output = Python.RunProgram("dotnet", StitchCli.Dll(), "sae", "transfer", "--sae", saeDir, "--stitch", stitchFile, "--out", outDir);
        Assert.Contains("d_in 12", output);
        using var back = SaeLensFormat.ReadFolder(outDir);
        var x = randn(30, 12, generator: new Generator(1));
        Assert.True(SaeFixtures.MaxAbsDiff(stitch.Up(sae.Forward(stitch.Down(x))), back.Forward(x)) < 1e-5);
    }
}
