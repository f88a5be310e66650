using Grpc.Core;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Sae.Storage;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Sae;

/// <summary>kill -9 of the process hosting a training job: a new process resumes it from its checkpoint.</summary>
[Trait("Category", "Integration")]
public class SaeKillRestartTests
{
    private const int D = 16, Latents = 48;

    private static TrainRequest Request(ArtifactRef set) => new()
    {
        ActivationSet = set, Sae = new SaeSpec { Architecture = "topk", DSae = Latents, K = 2 },
        Tokens = 128 * 1500, BatchSize = 128, Lr = 3e-3, Seed = 7, CheckpointEvery = 100, LogEvery = 5,
    };

    private static Task<Operation> FinishAsync(StitchCli server, string id) => OperationWaiter.SucceededAsync(server.Channel, id);

    [Fact]
    public async Task Kill_9_mid_training_then_restart_resumes_and_matches_an_uninterrupted_run()
    {
        using var storeDir = new TempDir("sae-kill");
        var store = new ArtifactStore(storeDir.Path);
        var (rows, _) = SaeFixtures.Planted(12000, D, 24, 2, 3);
        var set = SaeFixtures.WriteActivationSet(store, "as-planted", "blocks.2.hook_resid_pre", rows, D, 3000);

        string id;
        long stepAtKill;
        using (var first = await StitchCli.ServeAsync(storeDir.Path))
        {
            id = (await new SaeService.SaeServiceClient(first.Channel).TrainAsync(Request(set))).Id;
            stepAtKill = 0;
            using (var call = new OperationsService.OperationsServiceClient(first.Channel).WatchOperation(new WatchOperationRequest { Id = id }))
                await foreach (var o in call.ResponseStream.ReadAllAsync())
                    if ((stepAtKill = o.Progress?.Step ?? 0) >= 250) break;
            first.KillHard();
        }
        Assert.InRange(stepAtKill, 250, 1499);
        Assert.True(Directory.EnumerateDirectories(Path.Combine(storeDir.Path, "sae-checkpoint")).Any(), "no checkpoint was written before the kill");

        using var second = await StitchCli.ServeAsync(storeDir.Path);
        var resumed = await FinishAsync(second, id);
        Assert.Equal(2, resumed.Attempt);
        var reference = await FinishAsync(second, (await new SaeService.SaeServiceClient(second.Channel).TrainAsync(Request(set))).Id);
        var a = resumed.Result.Unpack<TrainResult>();
        var b = reference.Result.Unpack<TrainResult>();
        Assert.Equal(b.Tokens, a.Tokens);
        Assert.Equal(b.Flops, a.Flops);
        using var saeA = SaeArtifacts.Load(store, a.Sae.Ref, "sae");
        using var saeB = SaeArtifacts.Load(store, b.Sae.Ref, "sae");
        foreach (var ((name, x), (_, y)) in saeA.Named().Zip(saeB.Named()))
            Assert.True(SaeFixtures.MaxAbsDiff(x, y) < 1e-4, $"{name} differs by {SaeFixtures.MaxAbsDiff(x, y)}");
    }
}
