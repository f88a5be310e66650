using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Architectures;

/// <summary>
/// ReLU + L1 ("standard" in SAELens): f = ReLU(pre), trained with the penalty
/// lambda * mean_t sum_i f_i(x_t) ||W_dec,i|| (decoder norms keep the penalty honest if rows drift).
/// </summary>
public sealed class StandardRelu : ISaeArchitecture
{
    public string Name => "standard";
    public bool UsesK => false;
    public bool UsesThreshold => false;

    public Tensor Encode(Tensor pre, SaeParameters sae) => nn.functional.relu(pre);

    public (Tensor Latents, Tensor? Penalty) Train(Tensor pre, SaeParameters sae)
    {
        var f = nn.functional.relu(pre);
        var penalty = (f * sae.WDec.norm(1, keepdim: false)).sum(-1).mean() * sae.Config.SparsityCoefficient;
        return (f, penalty);
    }

    public Tensor? InitialThreshold(int latents, double initial) => null;
}
