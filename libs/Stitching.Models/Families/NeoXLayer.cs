using Stitching.Models.Runtime;
using static TorchSharp.torch;

namespace Stitching.Models.Families;

/// <summary>The weights of one GPT-NeoX block, named after their Hugging Face keys (gpt_neox.layers.N.*).</summary>
public sealed record NeoXBlockWeights(Tensor Ln1W, Tensor Ln1B, Tensor QkvW, Tensor? QkvB, Tensor DenseW, Tensor? DenseB,
                                      Tensor Ln2W, Tensor Ln2B, Tensor UpW, Tensor UpB, Tensor DownW, Tensor DownB);

/// <summary>
/// One GPT-NeoX block as Hugging Face computes it, shared by the inference runtime (<see cref="GptNeoX"/>)
/// and the zoo's trainer so a trained model and its reloaded checkpoint run the very same kernels.
/// </summary>
public sealed class NeoXLayer(int heads, int headDim, double eps, bool parallel, Rotary rotary, Func<Tensor, Tensor> act)
{
    /// <summary>Runs one block; every site it computes passes through <paramref name="hook"/>.</summary>
    public Tensor Run(NeoXBlockWeights b, Tensor x, HookFn hook, AttentionStep step = default)
    {
        x = hook(HookSite.ResidPre, x);
        var attn = hook(HookSite.AttnOut, Attention(Ops.LayerNorm(x, b.Ln1W, b.Ln1B, eps), b, step));
        Tensor Mlp(Tensor input) => hook(HookSite.MlpOut,
            Ops.Linear(act(Ops.Linear(Ops.LayerNorm(input, b.Ln2W, b.Ln2B, eps), b.UpW, b.UpB)), b.DownW, b.DownB));
        if (parallel) return hook(HookSite.ResidPost, x + attn + Mlp(x));
        x = hook(HookSite.ResidMid, x + attn);
        return hook(HookSite.ResidPost, x + Mlp(x));
    }

    // Fused qkv [3d, d] laid out per head: the output viewed as [B, T, H, 3 hd] splits into q, k, v per head.
    private Tensor Attention(Tensor h, NeoXBlockWeights b, AttentionStep step)
    {
        long batch = h.shape[0], t = h.shape[1];
        var qkv = Ops.Linear(h, b.QkvW, b.QkvB).view(batch, t, heads, 3 * headDim).transpose(1, 2);
        var parts = qkv.split(headDim, dim: -1);
        var (cos, sin) = rotary.Tables(t, h.dtype, h.device, step.Offset);
        var q = rotary.Apply(parts[0], cos, sin);
        var (k, v) = step.Extend(rotary.Apply(parts[1], cos, sin), parts[2]);
        var y = Ops.Attention(q, k, v, 1 / Math.Sqrt(headDim), offset: step.Offset);
        return Ops.Linear(Ops.MergeHeads(y), b.DenseW, b.DenseB);
    }
}
