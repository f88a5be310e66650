using static TorchSharp.torch;

namespace Stitching.Models.Runtime;

/// <summary>
/// Separate q/k/v/o projections (nn.Linear, optional biases) with grouped-query heads and rotary
/// positions, as in Llama, Qwen2, Mistral and Gemma-2.
/// </summary>
public sealed record SelfAttention(Tensor Q, Tensor? QB, Tensor K, Tensor? KB, Tensor V, Tensor? VB, Tensor O, Tensor? OB,
                                   int Heads, int KvHeads, int HeadDim)
{
    /// <summary>Reads {prefix}self_attn.{q,k,v,o}_proj.weight and any biases through the model's loaders.</summary>
    public static SelfAttention Load(string prefix, Func<string, Tensor> weight, Func<string, Tensor?> bias, int heads, int kvHeads, int headDim)
    {
        Tensor W(string p) => weight($"{prefix}self_attn.{p}_proj.weight");
        Tensor? B(string p) => bias($"{prefix}self_attn.{p}_proj.bias");
        return new SelfAttention(W("q"), B("q"), W("k"), B("k"), W("v"), B("v"), W("o"), B("o"), heads, kvHeads, headDim);
    }

    public Tensor Forward(Tensor h, Rotary rotary, double scale, double? softcap = null, int? window = null, AttentionStep step = default)
    {
        var t = h.shape[1];
        var (cos, sin) = rotary.Tables(t, h.dtype, h.device, step.Offset);
        var q = rotary.Apply(Ops.SplitHeads(Ops.Linear(h, Q, QB), Heads, HeadDim), cos, sin);
        var k = rotary.Apply(Ops.SplitHeads(Ops.Linear(h, K, KB), KvHeads, HeadDim), cos, sin);
        var v = Ops.SplitHeads(Ops.Linear(h, V, VB), KvHeads, HeadDim);
        (k, v) = step.Extend(k, v);
        return Ops.Linear(Ops.MergeHeads(Ops.Attention(q, k, v, scale, softcap, window, step.Offset)), O, OB);
    }
}
