namespace Stitching.Stitch.Fitting;

/// <summary>
/// The paper's stitch recipe (section 2): Adam at lr 1e-4, global gradient-norm clip 1.0, cosine decay
/// to zero over all steps, 2 epochs, round-trip (inversion) weight alpha = 1. Batch size is ours (the
/// paper implies ~5.5k tokens per step; we default to 4096). Weights and biases start at zero (the paper
/// says so for biases and nothing for weights), unless initialised from lstsq. <paramref name="Steps"/>,
/// when positive, replaces the epoch count: that many steps over fresh permutations of the rows.
/// </summary>
public sealed record AdamOptions(double LearningRate = 1e-4, double ClipNorm = 1.0, int Epochs = 2, int BatchSize = 4096,
    double Alpha = 1.0, bool InitFromLstsq = false, ulong Seed = 0, long Steps = 0);
