using Stitching.Core.Metrics;
using Stitching.Sae.Evaluation;
using Stitching.Sae.Training;
using Stitching.Sae.WarmStart;
using static TorchSharp.torch;

namespace Stitching.Tests.Sae;

/// <summary>Warm-start comparison and loss recovered on hand-built curves whose answers are worked out by hand.</summary>
[Trait("Category", "Unit")]
public class WarmStartComparisonTests
{
    private static StepMetrics Row(long step, double flops, double ev) => new(step, step * 10, flops, 0, 0, 1 - ev, 0, 0);

    [Fact]
    public void Moving_average_and_training_batch_thresholds()
    {
        var rows = new[] { Row(1, 100, 0.1), Row(2, 200, 0.3), Row(3, 300, 0.5), Row(4, 400, 0.7) };
        var ma = WarmStartComparison.MovingExplainedVariance(rows, 2);
        Assert.Equal([0.1, 0.2, 0.4, 0.6], ma.Select(v => Math.Round(v, 12)));
        Assert.Equal(300, WarmStartComparison.FlopsToThreshold(rows, 0.4, 2));   // first moving average >= 0.4 is row 3
        Assert.Equal(100, WarmStartComparison.FlopsToThreshold(rows, 0.05, 2));
        Assert.Null(WarmStartComparison.FlopsToThreshold(rows, 0.65, 2));        // the average never reaches 0.65
    }

    [Fact]
    public void Relative_thresholds_read_scratch_final_and_savings_are_scratch_minus_warm_over_scratch()
    {
        // scratch: EV 0 -> 0.8 over 0 -> 100 FLOPs (linear); warm: starts at 0.4 after 20 FLOPs of stitch, 0.8 at 60
        EvalRow E(double flops, double ev) => new(0, 0, flops, 0, 1 - ev, 0);
        var scratch = new[] { E(0, 0), E(50, 0.4), E(100, 0.8) };
        var warm = new[] { E(20, 0.4), E(60, 0.8) };
        var curves = WarmStartComparison.Curves.HeldOut(scratch, warm);
        Assert.Equal((0.0, 0.4, 0.8, 0.8), (curves.ScratchInitial, curves.WarmInitial, curves.ScratchFinal, curves.WarmFinal));
        var t = curves.Thresholds([0.6], [0.5]);
        // absolute 0.6: scratch at 75 (halfway 50 -> 100), warm at 40 (halfway 20 -> 60); saving (75 - 40) / 75
        Assert.Equal((0.6, 75.0, 40.0), (t[0].ExplainedVariance, t[0].ScratchFlops!.Value, t[0].WarmFlops!.Value));
        Assert.Equal(35.0 / 75, t[0].RelativeSaving, 12);
        // relative 0.5 of scratch's final 0.8 = EV 0.4: scratch at 50, warm already there at its first row (20)
        Assert.True(t[1].RelativeToScratchFinal);
        Assert.Equal((0.4, 50.0, 20.0), (t[1].ExplainedVariance, t[1].ScratchFlops!.Value, t[1].WarmFlops!.Value));
        Assert.Equal(0.6, t[1].RelativeSaving, 12);
        // never reached: no saving
        var never = curves.Thresholds([0.9], []);
        Assert.Null(never[0].ScratchFlops);
        Assert.True(double.IsNaN(never[0].RelativeSaving));
    }

    [Fact]
    public void Power_law_fit_recovers_an_exact_power_law()
    {
        var rows = Enumerable.Range(0, 8).Select(i => Math.Pow(10, 3 + i * 0.5))
            .Select((c, i) => new StepMetrics(i + 1, 0, c, 0, 0, 3 * Math.Pow(c, -0.5), 0, 0)).ToList();
        var fit = WarmStartComparison.FitPowerLaw(rows);
        Assert.Equal(3, fit.A, 9);
        Assert.Equal(0.5, fit.Beta, 12);
        Assert.Equal(8, fit.Points);
    }

    [Fact]
    public void Decoder_row_cosine_is_the_mean_over_latents()
    {
        using var initial = tensor(new float[] { 1, 0, 0, 1 }, [2, 2]);
        using var final = tensor(new float[] { 1, 1, 0, 2 }, [2, 2]);
        Assert.Equal((1 / Math.Sqrt(2) + 1) / 2, WarmStartComparison.MeanRowCosine(initial, final), 6);
    }

    [Fact]
    public void Loss_recovered_is_the_fraction_of_the_ablation_gap_closed()
    {
        Assert.Equal(0.75, LanguageModelMetrics.LossRecovered(clean: 2, patched: 3, ablated: 6), 12);
        Assert.Equal(1, LanguageModelMetrics.LossRecovered(2, 2, 6), 12);
        Assert.Equal(0, LanguageModelMetrics.LossRecovered(2, 6, 6), 12);
        Assert.Equal(-0.25, LanguageModelMetrics.LossRecovered(2, 7, 6), 12); // worse than the ablation
    }
}
