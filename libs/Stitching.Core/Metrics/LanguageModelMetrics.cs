using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Stitching.Core.Metrics;

/// <summary>
/// Next-token metrics, the single definition every service uses (docs/metrics.md). All computed in
/// float32 from logits [B, T, V] and ids [B, T]; natural logarithms.
/// </summary>
public static class LanguageModelMetrics
{
    /// <summary>
    /// Per-token next-token cross-entropy, [B, T-1]: loss[b, t] = -log softmax(logits[b, t])[ids[b, t+1]].
    /// </summary>
    public static Tensor NextTokenLoss(Tensor logits, Tensor ids)
    {
        var t = logits.shape[1];
        var logp = F.log_softmax(logits[.., ..(int)(t - 1)].to(ScalarType.Float32), dim: -1);
        var targets = ids[.., 1..].to(ScalarType.Int64, logits.device).unsqueeze(-1);
        return -logp.gather(-1, targets).squeeze(-1);
    }

    /// <summary>
    /// Per-token KL divergence of the patched next-token distribution from the clean one, [B, T]:
    /// KL(P_clean || P_patched) = sum_v p_clean(v) (log p_clean(v) - log p_patched(v)).
    /// </summary>
    public static Tensor KlFromClean(Tensor cleanLogits, Tensor patchedLogits)
    {
        var lc = F.log_softmax(cleanLogits.to(ScalarType.Float32), dim: -1);
        var lp = F.log_softmax(patchedLogits.to(ScalarType.Float32, cleanLogits.device), dim: -1);
        return (lc.exp() * (lc - lp)).sum(-1);
    }

    /// <summary>
    /// Fraction of the loss gap recovered by a patched run: (L_ablated - L_patched) / (L_ablated - L_clean),
    /// 1 when patching matches the clean model, 0 when it is as bad as the ablation.
    /// </summary>
    public static double LossRecovered(double clean, double patched, double ablated) => (ablated - patched) / (ablated - clean);
}
