using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Errors;
using Stitching.Stitch.Fitting;

namespace Stitching.Stitch.Operations;

/// <summary>The gRPC edge of fitting: a FitRequest validated and mapped to <see cref="FitSettings"/>.</summary>
public static class FitRequests
{
    public static FitSettings ToSettings(FitRequest r)
    {
        var method = string.IsNullOrEmpty(r.Method) ? FitSettings.Defaults.Method : r.Method.ToLowerInvariant();
        if (method is not (FitSettings.LstsqMethod or FitSettings.AdamMethod)) throw StitchingException.InvalidArgument("method", $"'{r.Method}' is unknown; use 'lstsq' (exact, default) or 'adam' (the paper's recipe).");
        Check.InRange(r.Ridge, 0, 1e30, "ridge", "the ridge penalty lambda");
        if (!string.IsNullOrEmpty(r.Id)) Stitching.Core.Artifacts.ArtifactIds.Validate(r.Id, "id");
        if (r.HeldoutFraction < 0 || r.HeldoutFraction >= 1) throw StitchingException.InvalidArgument("heldout_fraction", "must lie in [0, 1); default 0.1.");
        if (r.MaxHeldoutTokens < 0 || r.MaxTokens < 0) throw StitchingException.InvalidArgument(r.MaxTokens < 0 ? "max_tokens" : "max_heldout_tokens", "must be >= 0 (0 = default).");
        var a = r.Adam ?? new AdamSettings();
        Check.InRange(a.LearningRate, 0, 10, "adam.learning_rate", $"0 = default {FitSettings.Defaults.AdamLearningRate}");
        Check.InRange(a.ClipNorm, 0, 1e30, "adam.clip_norm", $"0 = default {FitSettings.Defaults.AdamClipNorm}");
        Check.InRange(a.Epochs, 0, 10_000, "adam.epochs", $"0 = default {FitSettings.Defaults.AdamEpochs}");
        Check.InRange(a.BatchSize, 0, 1 << 20, "adam.batch_size", $"0 = default {FitSettings.Defaults.AdamBatchSize}");
        Check.InRange(a.Alpha, 0, 1e6, "adam.alpha", "the round-trip weight");
        Check.InRange(a.Steps, 0, 100_000_000, "adam.steps", "0 = epochs decide");
        var adam = new AdamOptions(
            a.LearningRate == 0 ? FitSettings.Defaults.AdamLearningRate : a.LearningRate, a.ClipNorm == 0 ? FitSettings.Defaults.AdamClipNorm : a.ClipNorm, a.Epochs == 0 ? FitSettings.Defaults.AdamEpochs : a.Epochs,
            a.BatchSize == 0 ? FitSettings.Defaults.AdamBatchSize : a.BatchSize, a.Alpha == 0 && !a.AlphaSet ? FitSettings.Defaults.AdamAlpha : a.Alpha, a.InitLstsq, a.Seed, a.Steps);
        return new FitSettings(method, r.Ridge, r.HeldoutFraction == 0 ? FitSettings.Defaults.HeldOutFraction : r.HeldoutFraction,
            r.MaxHeldoutTokens == 0 ? FitSettings.Defaults.MaxHeldOutTokens : r.MaxHeldoutTokens, r.MaxTokens == 0 ? long.MaxValue : r.MaxTokens, adam);
    }
}
