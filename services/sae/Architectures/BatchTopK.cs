using TorchSharp;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Architectures;

/// <summary>
/// BatchTopK (Bussmann et al. 2024): in training, keep the k * n largest ReLU pre-activations of the whole
/// batch of n tokens, so k is an average per token. For inference a single threshold replaces the batch
/// selection (the per-latent threshold tensor, all entries equal): an exponential moving average (0.99)
/// of the smallest kept activation in each training batch; f = pre where pre > threshold.
/// </summary>
public sealed class BatchTopK : ISaeArchitecture, ISparseSelection
{
    public const double ThresholdDecay = 0.99;

    public string Name => "batchtopk";
    public bool UsesK => true;
    public bool UsesThreshold => true;

    public Tensor Encode(Tensor pre, SaeParameters sae) => JumpRelu.Gate(pre, sae.Threshold!);

    public (Tensor Latents, Tensor? Penalty) Train(Tensor pre, SaeParameters sae)
    {
        var flat = nn.functional.relu(pre).flatten();
        var (values, indices) = Select(flat, pre.shape[0], sae);
        return (zeros_like(flat).scatter(0, indices, values).view(pre.shape), null);
    }

    public (Tensor Tokens, Tensor Latents, Tensor Values) SelectForTraining(Tensor pre, SaeParameters sae)
    {
        var m = pre.shape[1];
        var (values, indices) = Select(nn.functional.relu(pre).flatten(), pre.shape[0], sae);
        return (indices.div(m, rounding_mode: RoundingMode.floor), indices.remainder(m), values);
    }

    /// <summary>The k n largest of the batch's flattened ReLU pre-activations; moves the inference threshold.</summary>
    private static (Tensor Values, Tensor Indices) Select(Tensor flat, long n, SaeParameters sae)
    {
        var keep = (int)Math.Min((long)sae.Config.K * n, flat.shape[0]);
        var (values, indices) = flat.topk(keep);
        using (no_grad())
        {
            var positive = values.detach()[values.detach() > 0];
            if (positive.numel() > 0)
            {
                var smallest = positive.min().item<float>();
                var t = sae.Threshold!;
                // First batch sets the threshold; later batches move it by a moving average.
                using Scalar first = smallest, decay = ThresholdDecay, rest = (1 - ThresholdDecay) * smallest;
                if (t.max().item<float>() == 0) t.fill_(first);
                else t.mul_(decay).add_(rest);
            }
        }
        return (values, indices);
    }

    public Tensor? InitialThreshold(int latents, double initial) => zeros(latents);
}
