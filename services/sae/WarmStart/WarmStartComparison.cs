using Stitching.Sae.Training;
using static TorchSharp.torch;

namespace Stitching.Sae.WarmStart;

/// <summary>
/// Scratch vs warm-start (paper section 5). FLOPs-to-threshold: the ledger FLOPs (stitch included for the
/// warm run) at the first training-log row whose moving average of explained variance over the last
/// <c>window</c> rows reaches the threshold; relative saving = (scratch - warm) / scratch. Power law:
/// least squares of log FVU = log A - beta log C over the log rows. Decoder rotation: mean over latents
/// of cos(initial row, final row).
/// </summary>
public static class WarmStartComparison
{
    public sealed record ThresholdResult(double Threshold, double? ScratchFlops, double? WarmFlops)
    {
        public double RelativeSaving => ScratchFlops is > 0 && WarmFlops is not null ? (ScratchFlops.Value - WarmFlops.Value) / ScratchFlops.Value : double.NaN;
    }

    public sealed record PowerLaw(double A, double Beta, int Points);

    /// <summary>Moving average of explained variance over the last <paramref name="window"/> rows (fewer at the start).</summary>
    public static double[] MovingExplainedVariance(IReadOnlyList<StepMetrics> rows, int window)
    {
        var w = Math.Max(1, window);
        var result = new double[rows.Count];
        double sum = 0;
        for (var i = 0; i < rows.Count; i++)
        {
            sum += rows[i].ExplainedVariance;
            if (i >= w) sum -= rows[i - w].ExplainedVariance;
            result[i] = sum / Math.Min(i + 1, w);
        }
        return result;
    }

    /// <summary>Ledger FLOPs when the moving average first reaches <paramref name="threshold"/>; null if never.</summary>
    public static double? FlopsToThreshold(IReadOnlyList<StepMetrics> rows, double threshold, int window)
    {
        var ma = MovingExplainedVariance(rows, window);
        for (var i = 0; i < rows.Count; i++) if (ma[i] >= threshold) return rows[i].Flops;
        return null;
    }

    public static IReadOnlyList<ThresholdResult> Thresholds(IReadOnlyList<StepMetrics> scratch, IReadOnlyList<StepMetrics> warm, IEnumerable<double> thresholds, int window) =>
        thresholds.Select(t => new ThresholdResult(t, FlopsToThreshold(scratch, t, window), FlopsToThreshold(warm, t, window))).ToList();

    /// <summary>FVU ~ A C^-beta by ordinary least squares in log-log space over rows with C &gt; 0 and FVU &gt; 0.</summary>
    public static PowerLaw FitPowerLaw(IReadOnlyList<StepMetrics> rows)
    {
        var pts = rows.Where(r => r.Flops > 0 && r.Fvu > 0).Select(r => (X: Math.Log(r.Flops), Y: Math.Log(r.Fvu))).ToList();
        if (pts.Count < 2) return new PowerLaw(double.NaN, double.NaN, pts.Count);
        var mx = pts.Average(p => p.X);
        var my = pts.Average(p => p.Y);
        var sxx = pts.Sum(p => (p.X - mx) * (p.X - mx));
        var sxy = pts.Sum(p => (p.X - mx) * (p.Y - my));
        if (sxx == 0) return new PowerLaw(double.NaN, double.NaN, pts.Count);
        var slope = sxy / sxx;
        return new PowerLaw(Math.Exp(my - slope * mx), -slope, pts.Count);
    }

    /// <summary>Mean over latents of cos(initial decoder row, final decoder row); both [d_sae, d_in].</summary>
    public static double MeanRowCosine(Tensor initial, Tensor final)
    {
        using var scope = NewDisposeScope();
        return nn.functional.cosine_similarity(initial.to(ScalarType.Float64), final.to(ScalarType.Float64), dim: 1).mean().item<double>();
    }
}
