using Stitching.Core.Stitches;
using Stitching.Stitch.Fitting;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace Stitching.Tests.Stitch;

/// <summary>The paper's Adam recipe against the exact solution on the same data.</summary>
[Trait("Category", "Unit")]
public class AdamStitchTests(ITestOutputHelper output)
{
    private static (Tensor A, Tensor B) Data()
    {
        var (a, b, _, _) = StitchMath.Planted(4000, 8, 12, noise: 0.5, seed: 3);
        return (a.to(ScalarType.Float32), b.to(ScalarType.Float32));
    }

    [Fact]
    public void Adam_without_round_trip_term_converges_towards_lstsq()
    {
        var (a, b) = Data();
        var (up, down) = StitchMath.Fit(a, b);
        var exact = new AffineStitch(up.P, up.B, down.P, down.B);
        var exactMetrics = HeldOutEvaluation.Evaluate(exact, a, b);
        var shortRun = AdamStitchTrainer.Train(a, b, new AdamOptions(LearningRate: 1e-2, Epochs: 2, BatchSize: 256, Alpha: 0), null);
        var longRun = AdamStitchTrainer.Train(a, b, new AdamOptions(LearningRate: 1e-2, Epochs: 30, BatchSize: 256, Alpha: 0), null);
        var gapShort = StitchMath.RelativeError(shortRun.Stitch.PUp, up.P);
        var gapLong = StitchMath.RelativeError(longRun.Stitch.PUp, up.P);
        var mse = HeldOutEvaluation.Evaluate(longRun.Stitch, a, b)["mse_up"];
        output.WriteLine($"P_up gap to lstsq: {gapShort:E2} after 2 epochs, {gapLong:E2} after 30; mse_up adam {mse:G6} vs lstsq {exactMetrics["mse_up"]:G6}");
        Assert.True(gapLong < gapShort);
        Assert.True(gapLong < 0.05, $"gap {gapLong}");
        Assert.True(mse < exactMetrics["mse_up"] * 1.03, $"adam mse {mse} vs lstsq {exactMetrics["mse_up"]}");
        Assert.True(mse >= exactMetrics["mse_up"] * (1 - 1e-4)); // lstsq is optimal on its training data
    }

    [Fact]
    public void Round_trip_term_improves_round_trip_error_as_the_paper_says()
    {
        var (a, b) = Data();
        var options = new AdamOptions(LearningRate: 1e-2, Epochs: 10, BatchSize: 256);
        var plain = HeldOutEvaluation.Evaluate(AdamStitchTrainer.Train(a, b, options with { Alpha = 0 }, null).Stitch, a, b);
        var inverse = HeldOutEvaluation.Evaluate(AdamStitchTrainer.Train(a, b, options with { Alpha = 1 }, null).Stitch, a, b);
        output.WriteLine($"fvu_up_down alpha=0 {plain["fvu_up_down"]:G4}, alpha=1 {inverse["fvu_up_down"]:G4}; fvu_down_up {plain["fvu_down_up"]:G4} vs {inverse["fvu_down_up"]:G4}");
        Assert.True(inverse["fvu_up_down"] < plain["fvu_up_down"]);
        Assert.True(inverse["fvu_down_up"] < plain["fvu_down_up"]);
    }
}
