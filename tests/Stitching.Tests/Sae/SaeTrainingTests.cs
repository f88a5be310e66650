using Stitching.Sae.Weights;
using Stitching.Sae.Training;
using Stitching.Sae.Data;
using static TorchSharp.torch;

namespace Stitching.Tests.Sae;

/// <summary>Training on data with planted sparse features, and the invariants of the training step.</summary>
[Trait("Category", "Unit")]
public class SaeTrainingTests
{
    private const int D = 16, Features = 24, Latents = 48;

    /// <summary>Trains on one dedicated thread, as the service does on its torch worker (dispose scopes are per thread).</summary>
    private static Task<(SaeTrainer Trainer, List<StepMetrics> Log, float[,] Dirs)> TrainAsync(string architecture, int k, int steps, double lr, double sparsity = 0)
    {
        using var worker = new Stitching.Core.Compute.TorchWorker();
        return worker.RunAsync(() =>
        {
            var (rows, dirs) = SaeFixtures.Planted(20000, D, Features, active: 2, seed: 3);
            var stream = new ShuffledRows(new SaeFixtures.MemoryShards(rows, D, 5000), 2, seed: 4);
            var config = new SaeConfig(architecture, D, Latents, k, SparsityCoefficient: sparsity, Bandwidth: 0.05);
            var trainer = new SaeTrainer(SaeInitializer.Create(config, stream.WindowStatsAsync(default).GetAwaiter().GetResult().Mean, 5, 0.1), new TrainerOptions(DeadWindowTokens: 20000));
            var log = new List<StepMetrics>();
            for (var s = 0; s < steps; s++)
            {
                var batch = stream.NextAsync(256, default).GetAwaiter().GetResult();
                using var scope = NewDisposeScope();
                log.Add(trainer.TrainStep(tensor(batch, [256, D]), lr));
            }
            return (trainer, log, dirs);
        });
    }

    /// <summary>max over latents of cos(planted direction, decoder row), one value per planted direction.</summary>
    private static double[] MaxCosines(SaeParameters sae, float[,] dirs)
    {
        var planted = tensor(dirs);
        var cos = planted.matmul(sae.WDec.t()) / (planted.norm(1, keepdim: true) * sae.WDec.norm(1).unsqueeze(0));
        return SaeFixtures.Floats(cos.max(1).values).Select(v => (double)v).ToArray();
    }

    [Theory]
    [InlineData("topk", 2, 0.0)]
    [InlineData("batchtopk", 2, 0.0)]
    [InlineData("jumprelu", 0, 0.1)]
    [InlineData("standard", 0, 0.3)]
    public async Task Training_recovers_planted_sparse_features(string architecture, int k, double sparsity)
    {
        var (trainer, log, dirs) = await TrainAsync(architecture, k, steps: architecture == "jumprelu" ? 4000 : 1500, lr: 3e-3, sparsity);
        var cosines = MaxCosines(trainer.Sae, dirs);
        var recovered = cosines.Count(c => c > 0.9);
        Assert.True(recovered >= Features * 0.9, $"{architecture}: {recovered}/{Features} planted directions with max-cosine > 0.9 (min {cosines.Min():F3}); final FVU {log[^1].Fvu:F3}, L0 {log[^1].L0:F2}");
        Assert.True(log[^1].Fvu < 0.1, $"final FVU {log[^1].Fvu}");
        // Before training the random decoder matches no planted direction that well.
        Assert.True(log[0].Fvu > log[^1].Fvu * 3);
    }

    [Fact]
    public async Task Decoder_rows_stay_unit_norm_topk_l0_is_k_and_flops_follow_the_formula()
    {
        var (trainer, log, _) = await TrainAsync("topk", 3, steps: 20, lr: 1e-3);
        Assert.True(SaeFixtures.MaxAbsDiff(trainer.Sae.WDec.norm(1), ones(Latents)) < 1e-5);
        Assert.All(log, m => Assert.InRange(m.L0, 2.5, 3.0));
        Assert.Equal(20 * 10.0 * 256 * D * Latents, log[^1].Flops);
        Assert.Equal(20 * 256, log[^1].Tokens);
    }

    [Fact]
    public void Initialisation_ties_encoder_to_decoder_and_b_dec_to_the_mean()
    {
        var mean = Enumerable.Range(0, D).Select(i => (float)i).ToArray();
        using var sae = SaeInitializer.Create(new SaeConfig("topk", D, Latents, 4), mean, 1);
        Assert.True(SaeFixtures.MaxAbsDiff(sae.WEnc, sae.WDec.t()) == 0);
        Assert.Equal(mean, SaeFixtures.Floats(sae.BDec));
        Assert.True(SaeFixtures.MaxAbsDiff(sae.WDec.norm(1), ones(Latents)) < 1e-5);
    }

    [Fact]
    public void Warmup_decay_schedule_rises_then_falls_to_zero()
    {
        var s = LearningRateSchedule.Create("warmup_decay", 1.0, warmup: 10, decayFraction: 0.5, totalSteps: 100);
        Assert.Equal(0.1, s.At(1), 12);
        Assert.Equal(1.0, s.At(10), 12);
        Assert.Equal(1.0, s.At(50), 12);
        Assert.True(s.At(75) is > 0.4 and < 0.6);
        Assert.True(s.At(100) is > 0 and < 0.05);
        Assert.Equal(1e-4, LearningRateSchedule.Create("", 1e-4, 0, 0, 10).At(7));
    }

    [Fact]
    public async Task Shuffled_rows_resume_from_a_saved_position()
    {
        var (rows, _) = SaeFixtures.Planted(1000, 4, 5, 1, 1);
        var src = new SaeFixtures.MemoryShards(rows, 4, 300);
        var a = new ShuffledRows(src, 2, 9);
        for (var i = 0; i < 7; i++) await a.NextAsync(70, default);
        var (w, o) = (a.Window, a.Offset);
        var expected = await a.NextAsync(70, default);
        var b = new ShuffledRows(src, 2, 9);
        b.Seek(w, o);
        Assert.Equal(expected, await b.NextAsync(70, default));
        Assert.NotEqual(expected, await new ShuffledRows(src, 2, 10).NextAsync(70, default));
    }
}
