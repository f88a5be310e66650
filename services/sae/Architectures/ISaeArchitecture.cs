using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Architectures;

/// <summary>
/// One SAE activation sigma (paper section 4) with its training-time form. Each architecture lives in its
/// own file and is found by name through <see cref="SaeArchitectures"/>.
/// </summary>
public interface ISaeArchitecture
{
    /// <summary>Name in cfg.json ("topk", "batchtopk", "jumprelu", "standard").</summary>
    string Name { get; }

    /// <summary>Whether cfg.json's k applies (top-k selection).</summary>
    bool UsesK { get; }

    /// <summary>Whether the SAE carries a per-latent threshold tensor.</summary>
    bool UsesThreshold { get; }

    /// <summary>Latents for inference from pre-activations [n, d_sae].</summary>
    Tensor Encode(Tensor pre, SaeParameters sae);

    /// <summary>
    /// Latents for a training step (differentiable, possibly through a straight-through estimator) and
    /// the architecture's sparsity penalty (null when sparsity is structural, as with top-k).
    /// </summary>
    (Tensor Latents, Tensor? Penalty) Train(Tensor pre, SaeParameters sae);

    /// <summary>Initial threshold for a new SAE of this architecture, or null when it has none.</summary>
    Tensor? InitialThreshold(int latents, double initial);
}
