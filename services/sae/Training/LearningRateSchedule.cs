using Stitching.Core.Errors;

namespace Stitching.Sae.Training;

/// <summary>
/// "constant" (the paper's: lr every step) or "warmup_decay": lr * min(1, t / warmup) for steps t = 1..T,
/// times a linear decay to zero over the last <c>decayFraction</c> of the T steps.
/// </summary>
public sealed record LearningRateSchedule(string Kind, double Lr, long WarmupSteps, double DecayFraction, long TotalSteps)
{
    public static LearningRateSchedule Create(string? kind, double lr, long warmup, double decayFraction, long totalSteps)
    {
        var k = string.IsNullOrEmpty(kind) ? "constant" : kind;
        if (k is not ("constant" or "warmup_decay"))
            throw StitchingException.InvalidArgument("lr_schedule", $"'{kind}' is not a schedule; use constant or warmup_decay.");
        if (decayFraction is < 0 or > 1) throw StitchingException.InvalidArgument("decay_fraction", "must lie in [0, 1].");
        return new LearningRateSchedule(k, lr, warmup, decayFraction, totalSteps);
    }

    /// <summary>Learning rate of step t (1-based).</summary>
    public double At(long t)
    {
        if (Kind == "constant") return Lr;
        var warm = WarmupSteps > 0 ? Math.Min(1.0, (double)t / WarmupSteps) : 1.0;
        var decaySteps = (long)Math.Round(DecayFraction * TotalSteps);
        var decayStart = TotalSteps - decaySteps;
        var decay = decaySteps > 0 && t > decayStart ? Math.Max(0, (double)(TotalSteps - t + 1) / (decaySteps + 1)) : 1.0;
        return Lr * warm * decay;
    }
}
