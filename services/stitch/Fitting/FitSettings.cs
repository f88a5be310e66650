namespace Stitching.Stitch.Fitting;

/// <summary>How a stitch is fitted, every default filled in (stitch.proto documents each; <see cref="Defaults"/> holds them).</summary>
public sealed record FitSettings(string Method, double Ridge, double HeldOutFraction, long MaxHeldOutTokens, long MaxTokens, AdamOptions Adam)
{
    public const string LstsqMethod = "lstsq";
    public const string AdamMethod = "adam";

    /// <summary>The defaults a request's zero values stand for.</summary>
    public static class Defaults
    {
        public const string Method = LstsqMethod;
        public const double HeldOutFraction = 0.1;
        public const long MaxHeldOutTokens = 65536;
        public const double AdamLearningRate = 1e-4, AdamClipNorm = 1.0, AdamAlpha = 1.0;
        public const int AdamEpochs = 2, AdamBatchSize = 4096;
    }

    /// <summary>Whether the exact statistics pass is needed (lstsq, or adam initialised from it).</summary>
    public bool NeedsStatistics => Method == LstsqMethod || Adam.InitFromLstsq;
}
