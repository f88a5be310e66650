using Stitching.Sae.Evaluation;
using Stitching.Sae.Training;
using static TorchSharp.torch;

namespace Stitching.Sae.WarmStart;

/// <summary>
/// Scratch vs warm-start (paper section 5). FLOPs-to-threshold on held-out curves (the default when both
/// runs were evaluated on a fixed held-out batch): the ledger FLOPs (stitch included for the warm run)
/// where the explained-variance curve first reaches the threshold, linearly interpolated between the two
/// evaluations around the crossing. On training-batch curves (the paper's): the FLOPs at the first log row
/// whose moving average over the last <c>window</c> rows reaches it. Thresholds are absolute explained
/// variances or fractions of scratch's final value. Relative saving = (scratch - warm) / scratch. Power law:
/// least squares of log FVU = log A - beta log C over the log rows. Decoder rotation: mean over latents
/// of cos(initial row, final row).
/// </summary>
public static class WarmStartComparison
{
    public sealed record ThresholdResult(double Threshold, double? ScratchFlops, double? WarmFlops, bool RelativeToScratchFinal = false, double ExplainedVariance = double.NaN)
    {
        public double RelativeSaving => ScratchFlops is > 0 && WarmFlops is not null ? (ScratchFlops.Value - WarmFlops.Value) / ScratchFlops.Value : double.NaN;
    }

    public sealed record PowerLaw(double A, double Beta, int Points);

    /// <summary>One point of an explained-variance curve: ledger FLOPs, tokens seen, EV (held out, or the training-batch moving average).</summary>
    public sealed record CurvePoint(double Flops, long Tokens, double ExplainedVariance);

    /// <summary>
    /// The two runs' explained-variance curves against ledger FLOPs, with their first and final values.
    /// <see cref="FlopsAt"/> answers FLOPs-to-threshold for one curve (null = never reached).
    /// </summary>
    public sealed record Curves(string MeasuredOn, double ScratchInitial, double WarmInitial, double ScratchFinal, double WarmFinal,
        Func<bool, double, double?> FlopsAt, IReadOnlyList<CurvePoint> ScratchPoints, IReadOnlyList<CurvePoint> WarmPoints)
    {
        public static Curves HeldOut(IReadOnlyList<EvalRow> scratch, IReadOnlyList<EvalRow> warm) =>
            new("heldout", scratch[0].ExplainedVariance, warm[0].ExplainedVariance, scratch[^1].ExplainedVariance, warm[^1].ExplainedVariance,
                (isWarm, t) => FlopsToThreshold(isWarm ? warm : scratch, t), Points(scratch), Points(warm));

        public static Curves TrainingBatch(IReadOnlyList<StepMetrics> scratch, IReadOnlyList<StepMetrics> warm, int window) =>
            new("training_batch", scratch[0].ExplainedVariance, warm[0].ExplainedVariance,
                MovingExplainedVariance(scratch, window)[^1], MovingExplainedVariance(warm, window)[^1],
                (isWarm, t) => FlopsToThreshold(isWarm ? warm : scratch, t, window), Points(scratch, window), Points(warm, window));

        private static CurvePoint[] Points(IReadOnlyList<EvalRow> rows) => rows.Select(r => new CurvePoint(r.Flops, r.Tokens, r.ExplainedVariance)).ToArray();

        private static CurvePoint[] Points(IReadOnlyList<StepMetrics> rows, int window)
        {
            var ev = MovingExplainedVariance(rows, window);
            return rows.Select((r, i) => new CurvePoint(r.Flops, r.Tokens, ev[i])).ToArray();
        }

        /// <summary>Absolute thresholds, then fractions of scratch's final explained variance.</summary>
        public IReadOnlyList<ThresholdResult> Thresholds(IEnumerable<double> absolute, IEnumerable<double> relative) =>
            absolute.Select(t => (Given: t, Relative: false, Ev: t))
                .Concat(relative.Select(f => (Given: f, Relative: true, Ev: f * ScratchFinal)))
                .Select(x => new ThresholdResult(x.Given, FlopsAt(false, x.Ev), FlopsAt(true, x.Ev), x.Relative, x.Ev)).ToList();
    }

    /// <summary>
    /// FLOPs where a held-out curve first reaches <paramref name="threshold"/>: the first row's FLOPs if it
    /// already does, else linear interpolation in FLOPs between the last row below and the first row at
    /// or above; null if no row reaches it.
    /// </summary>
    public static double? FlopsToThreshold(IReadOnlyList<EvalRow> rows, double threshold)
    {
        for (var i = 0; i < rows.Count; i++)
        {
            if (rows[i].ExplainedVariance < threshold) continue;
            if (i == 0) return rows[0].Flops;
            var (a, b) = (rows[i - 1], rows[i]);
            var t = (threshold - a.ExplainedVariance) / (b.ExplainedVariance - a.ExplainedVariance);
            return a.Flops + t * (b.Flops - a.Flops);
        }
        return null;
    }

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
    public static double MeanRowCosine(Tensor initial, Tensor final) => RowCosines(initial, final).Average();

    /// <summary>cos(initial row i, final row i) for every latent i (float64 arithmetic).</summary>
    public static double[] RowCosines(Tensor initial, Tensor final)
    {
        using var scope = NewDisposeScope();
        return nn.functional.cosine_similarity(initial.to(ScalarType.Float64), final.to(ScalarType.Float64), dim: 1).data<double>().ToArray();
    }
}
