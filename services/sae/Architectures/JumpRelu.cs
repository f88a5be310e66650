using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Architectures;

/// <summary>
/// JumpReLU (Rajamanoharan et al. 2024): f_i = pre_i * H(pre_i - theta_i) with a learned per-latent
/// threshold theta. Training penalises L0 = sum_i H(pre_i - theta_i) and reaches theta through
/// straight-through pseudo-derivatives with a rectangle kernel K(u) = 1[|u| &lt; 1/2] of bandwidth eps:
/// d f_i / d theta_i = -(theta_i / eps) K((pre_i - theta_i) / eps) and
/// d H(pre_i - theta_i) / d theta_i = -(1 / eps) K((pre_i - theta_i) / eps).
/// </summary>
public sealed class JumpRelu : ISaeArchitecture
{
    public const double DefaultBandwidth = 1e-3;

    public string Name => "jumprelu";
    public bool UsesK => false;
    public bool UsesThreshold => true;

    public Tensor Encode(Tensor pre, SaeParameters sae) => Gate(pre, sae.Threshold!);

    public (Tensor Latents, Tensor? Penalty) Train(Tensor pre, SaeParameters sae)
    {
        var theta = sae.Threshold!;
        var eps = sae.Config.Bandwidth > 0 ? sae.Config.Bandwidth : DefaultBandwidth;
        var open = pre.detach().gt(theta.detach()).to(ScalarType.Float32);
        var kernel = ((pre.detach() - theta.detach()) / eps).abs().lt(0.5).to(ScalarType.Float32);
        // Value pre * H (gradient to pre through the open gate); the extra terms are zero in value and
        // carry the pseudo-derivatives to theta.
        var jump = theta * (-(theta.detach() / eps) * kernel);
        var latents = pre * open + (jump - jump.detach());
        var step = theta * (-kernel / eps);
        var l0 = open + (step - step.detach());
        return (latents, l0.sum(-1).mean() * sae.Config.SparsityCoefficient);
    }

    public Tensor? InitialThreshold(int latents, double initial) => full(latents, initial > 0 ? initial : 1e-3);

    /// <summary>f = pre where pre &gt; threshold (threshold >= 0, so also ReLU), else 0.</summary>
    public static Tensor Gate(Tensor pre, Tensor threshold) => pre * pre.gt(threshold).to(pre.dtype) * pre.gt(0).to(pre.dtype);
}
