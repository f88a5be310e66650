using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Architectures;

/// <summary>
/// TopK (the paper's): f(x) = ReLU of the k largest pre-activations of each token, zero elsewhere.
/// Gradients flow to the kept pre-activations only; sparsity needs no penalty.
/// </summary>
public sealed class TopK : ISaeArchitecture
{
    public string Name => "topk";
    public bool UsesK => true;
    public bool UsesThreshold => false;

    public Tensor Encode(Tensor pre, SaeParameters sae) => Keep(pre, sae.Config.K);

    public (Tensor Latents, Tensor? Penalty) Train(Tensor pre, SaeParameters sae) => (Keep(pre, sae.Config.K), null);

    public Tensor? InitialThreshold(int latents, double initial) => null;

    /// <summary>Scatters ReLU(top-k values) of each row into zeros of the pre-activations' shape.</summary>
    public static Tensor Keep(Tensor pre, int k)
    {
        var (values, indices) = pre.topk(Math.Min(k, (int)pre.shape[^1]), dim: -1);
        return zeros_like(pre).scatter(-1, indices, nn.functional.relu(values));
    }
}
