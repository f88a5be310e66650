using Stitching.Core.Errors;
using Stitching.Core.Stitches;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Transfer;

/// <summary>
/// Transfer of an SAE on model A to model B through a stitch (paper section 4): the composition
/// T_up . SAE . T_down is itself an SAE on B, with
///   W_e' = P_down W_e,  b_e' = b_down W_e + b_e,  W_d' = W_d P_up,  b_d' = b_d P_up + b_up.
/// An SAE that subtracts b_d before encoding is folded first (b_e &lt;- b_e - b_d W_e); the result is then
/// re-expressed in the source's convention (b_e'' = b_e' + b_d' W_e'), which is the same function, so an
/// identity stitch returns the same SAE. TopK k and JumpReLU thresholds carry over unchanged. An SAE with
/// input scaling (normalize_activations) has the scaling folded into its weights first
/// (<see cref="SaeParameters.WithScalingFactor"/> with factor 1), so the result is exact and unscaled.
/// </summary>
public static class SaeTransfer
{
    public static SaeParameters Apply(SaeParameters sae, AffineStitch stitch, string model = "", string hook = "")
    {
        if (sae.Config.DIn != stitch.WidthA)
            throw StitchingException.FailedPrecondition($"the SAE reads width {sae.Config.DIn} but the stitch maps from width {stitch.WidthA}; use a stitch whose A side is the SAE's model.", "stitch");
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        if (sae.Config.ScalingFactor != 1)
        {
            using var folded = sae.WithScalingFactor(1);
            return Apply(folded, stitch, model, hook);
        }
        // Fold: sigma((x - b_d) W_e + b_e) = sigma(x W_e + (b_e - b_d W_e)).
        var bEnc = sae.Config.ApplyBDecToInput ? sae.BEnc - sae.BDec.matmul(sae.WEnc) : sae.BEnc;
        var wEnc2 = stitch.PDown.matmul(sae.WEnc);
        var bEnc2 = stitch.BDown.matmul(sae.WEnc) + bEnc;
        var wDec2 = sae.WDec.matmul(stitch.PUp);
        var bDec2 = sae.BDec.matmul(stitch.PUp) + stitch.BUp;
        if (sae.Config.ApplyBDecToInput) bEnc2 = bEnc2 + bDec2.matmul(wEnc2);
        var config = sae.Config with
        {
            DIn = (int)stitch.WidthB,
            Model = string.IsNullOrEmpty(model) ? sae.Config.Model : model,
            Hook = string.IsNullOrEmpty(hook) ? sae.Config.Hook : hook,
        };
        return new SaeParameters(config, wEnc2, bEnc2, wDec2, bDec2, sae.Threshold?.clone());
    }

    /// <summary>
    /// Rescales decoder rows to unit norm, W_d,i &lt;- W_d,i / n_i, and multiplies latent i's encoder column,
    /// b_e,i and threshold by n_i, so f_i grows by n_i and f_i W_d,i is unchanged. Exact for ReLU and
    /// JumpReLU (positively homogeneous); for top-k selections it reorders pre-activations across latents,
    /// so the function may change. Rows of zero norm are left as they are.
    /// </summary>
    public static SaeParameters RenormalizeDecoder(SaeParameters sae)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var norms = sae.WDec.norm(1, keepdim: false);
        var scale = where(norms > 0, norms, ones_like(norms));
        var bEnc = sae.BEnc * scale;
        // With b_d subtracted from the input, b_e scales like the rest of the pre-activation.
        return new SaeParameters(sae.Config, sae.WEnc * scale, bEnc, sae.WDec / scale.unsqueeze(1), sae.BDec.clone(), sae.Threshold is null ? null : sae.Threshold * scale);
    }
}
