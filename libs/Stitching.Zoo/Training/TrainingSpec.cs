namespace Stitching.Zoo.Training;

/// <summary>
/// How one size is trained: AdamW (betas 0.9/0.95, decoupled weight decay on matrices only), linear warmup
/// then cosine decay to <see cref="MinLrFraction"/> of the peak, gradient-norm clipping, fixed seed and threads.
/// </summary>
public sealed record TrainingSpec(int Seed, int Batch, long Tokens, double PeakLr, int WarmupSteps,
                                  double MinLrFraction = 0.1, double WeightDecay = 0.1, double ClipNorm = 1.0, int Threads = 2)
{
    /// <summary>Optimizer steps for a context: the token budget over tokens per step.</summary>
    public int Steps(int context) => (int)Math.Max(1, Tokens / ((long)Batch * context));

    /// <summary>Warmup lr_peak * (s + 1) / W, then lr_min + (lr_peak - lr_min) (1 + cos(pi p)) / 2 with p the decay progress.</summary>
    public double LearningRate(int step, int steps)
    {
        if (step < WarmupSteps) return PeakLr * (step + 1) / WarmupSteps;
        var progress = Math.Min(1.0, (double)(step - WarmupSteps) / Math.Max(1, steps - WarmupSteps));
        var min = PeakLr * MinLrFraction;
        return min + (PeakLr - min) * 0.5 * (1 + Math.Cos(Math.PI * progress));
    }
}
