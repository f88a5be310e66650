using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Errors;

namespace Stitching.Stitch.Fitting;

/// <summary>A FitRequest validated, with defaults filled in (stitch.proto documents each).</summary>
public sealed record FitSettings(string Method, double Ridge, double HeldOutFraction, long MaxHeldOutTokens, long MaxTokens, AdamOptions Adam)
{
    public const string LstsqMethod = "lstsq";
    public const string AdamMethod = "adam";

    public static FitSettings From(FitRequest r)
    {
        var method = string.IsNullOrEmpty(r.Method) ? LstsqMethod : r.Method.ToLowerInvariant();
        if (method is not (LstsqMethod or AdamMethod)) throw StitchingException.InvalidArgument("method", $"'{r.Method}' is unknown; use 'lstsq' (exact, default) or 'adam' (the paper's recipe).");
        if (r.Ridge < 0 || !double.IsFinite(r.Ridge)) throw StitchingException.InvalidArgument("ridge", "must be a finite number >= 0.");
        if (r.HeldoutFraction < 0 || r.HeldoutFraction >= 1) throw StitchingException.InvalidArgument("heldout_fraction", "must lie in [0, 1); default 0.1.");
        if (r.MaxHeldoutTokens < 0 || r.MaxTokens < 0) throw StitchingException.InvalidArgument(r.MaxTokens < 0 ? "max_tokens" : "max_heldout_tokens", "must be >= 0 (0 = default).");
        var a = r.Adam ?? new AdamSettings();
        if (!(a.LearningRate >= 0) || !(a.ClipNorm >= 0) || a.Epochs < 0 || a.BatchSize < 0 || !(a.Alpha >= 0) || a.Steps < 0
            || !double.IsFinite(a.LearningRate) || !double.IsFinite(a.ClipNorm) || !double.IsFinite(a.Alpha))
            throw StitchingException.InvalidArgument("adam", "learning_rate, clip_norm, epochs, batch_size, alpha and steps must be finite and >= 0 (0 = default).");
        var adam = new AdamOptions(
            a.LearningRate == 0 ? 1e-4 : a.LearningRate, a.ClipNorm == 0 ? 1.0 : a.ClipNorm, a.Epochs == 0 ? 2 : a.Epochs,
            a.BatchSize == 0 ? 4096 : a.BatchSize, a.Alpha == 0 && !a.AlphaSet ? 1.0 : a.Alpha, a.InitLstsq, a.Seed, a.Steps);
        return new FitSettings(method, r.Ridge, r.HeldoutFraction == 0 ? 0.1 : r.HeldoutFraction,
            r.MaxHeldoutTokens == 0 ? 65536 : r.MaxHeldoutTokens, r.MaxTokens == 0 ? long.MaxValue : r.MaxTokens, adam);
    }

    /// <summary>Whether the exact statistics pass is needed (lstsq, or adam initialised from it).</summary>
    public bool NeedsStatistics => Method == LstsqMethod || Adam.InitFromLstsq;
}
