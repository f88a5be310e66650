using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Architectures;

/// <summary>
/// TopK (the paper's): f(x) = ReLU of the k largest pre-activations of each token, zero elsewhere.
/// Gradients flow to the kept pre-activations only; sparsity needs no penalty.
/// </summary>
public sealed class TopK : ISaeArchitecture, ISparseSelection
{
    public string Name => "topk";
    public bool UsesK => true;
    public bool UsesThreshold => false;

    public Tensor Encode(Tensor pre, SaeParameters sae) => Keep(pre, sae.Config.K);

    public (Tensor Latents, Tensor? Penalty) Train(Tensor pre, SaeParameters sae) => (Keep(pre, sae.Config.K), null);

    public Tensor? InitialThreshold(int latents, double initial) => null;

    public (Tensor Tokens, Tensor Latents, Tensor Values) SelectForTraining(Tensor pre, SaeParameters sae)
    {
        var (n, k) = (pre.shape[0], Math.Min(sae.Config.K, (int)pre.shape[^1]));
        var (values, indices) = pre.topk(k, dim: -1);
        var tokens = arange(n, ScalarType.Int64, pre.device).unsqueeze(1).expand(n, k).reshape(-1);
        return (tokens, indices.reshape(-1), values.reshape(-1));
    }

    /// <summary>Scatters ReLU(top-k values) of each row into zeros of the pre-activations' shape.</summary>
    public static Tensor Keep(Tensor pre, int k)
    {
        var (values, indices) = pre.topk(Math.Min(k, (int)pre.shape[^1]), dim: -1);
        return zeros_like(pre).scatter(-1, indices, nn.functional.relu(values));
    }
}
