using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Architectures;

/// <summary>
/// An architecture whose training latents are a few selected pre-activations of the batch (TopK, BatchTopK), so
/// a training step can decode and back-propagate through those entries only (<see cref="Training.SparseTopKStep"/>).
/// </summary>
public interface ISparseSelection
{
    /// <summary>
    /// The entries of pre [n, M] the training latents keep, as three [nnz] tensors: token (int64), latent (int64)
    /// and the value v whose ReLU is the latent (its gradient flows where v &gt; 0). The same entries, with the same
    /// side effects (BatchTopK's threshold), as <see cref="ISaeArchitecture.Train"/>.
    /// </summary>
    (Tensor Tokens, Tensor Latents, Tensor Values) SelectForTraining(Tensor pre, SaeParameters sae);
}
