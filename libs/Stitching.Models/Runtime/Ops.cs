using Stitching.Core.Errors;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Stitching.Models.Runtime;

/// <summary>
/// The numerical building blocks the families share, each written the way Hugging Face computes it
/// (including where it upcasts to float32 under bfloat16).
/// </summary>
public static class Ops
{
    /// <summary>y = x W^T + b for nn.Linear weights stored [out, in].</summary>
    public static Tensor Linear(Tensor x, Tensor w, Tensor? b = null) => F.linear(x, w, b);

    public static Tensor LayerNorm(Tensor x, Tensor w, Tensor b, double eps) => F.layer_norm(x, [x.shape[^1]], w, b, eps);

    /// <summary>Llama RMSNorm: normalise in float32, cast back to the input dtype, then multiply by w.</summary>
    public static Tensor RmsNorm(Tensor x, Tensor w, double eps)
    {
        var h = x.to(ScalarType.Float32);
        h = h * rsqrt(h.pow(2).mean([-1], keepdim: true) + eps);
        return w * h.to(x.dtype);
    }

    /// <summary>Gemma RMSNorm: normalise and scale by (1 + w) in float32, then cast to the input dtype.</summary>
    public static Tensor GemmaRmsNorm(Tensor x, Tensor w, double eps)
    {
        var h = x.to(ScalarType.Float32);
        h = h * rsqrt(h.pow(2).mean([-1], keepdim: true) + eps);
        return (h * (1 + w.to(ScalarType.Float32))).to(x.dtype);
    }

    /// <summary>Hugging Face ACT2FN by name: gelu (erf), gelu_new / gelu_pytorch_tanh / gelu_fast (tanh), silu, relu.</summary>
    public static Func<Tensor, Tensor> Activation(string name) => name switch
    {
        "gelu" => x => F.gelu(x),
        "gelu_new" or "gelu_pytorch_tanh" or "gelu_fast" => GeluTanh,
        "silu" or "swish" => x => F.silu(x),
        "relu" => x => F.relu(x),
        _ => throw StitchingException.FailedPrecondition($"activation '{name}' is not supported; supported: gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, silu, relu.", "model"),
    };

    // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    private static Tensor GeluTanh(Tensor x) => 0.5 * x * (1 + tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * pow(x, 3))));

    /// <summary>Splits [B, T, H*hd] into heads [B, H, T, hd].</summary>
    public static Tensor SplitHeads(Tensor x, long heads, long headDim) => x.view(x.shape[0], x.shape[1], heads, headDim).transpose(1, 2);

    /// <summary>Merges heads [B, H, T, hd] into [B, T, H*hd].</summary>
    public static Tensor MergeHeads(Tensor x) => x.transpose(1, 2).reshape(x.shape[0], x.shape[2], x.shape[1] * x.shape[3]);

    /// <summary>
    /// Eager causal attention. q [B, H, T, hd], k and v [B, KV, offset + T, hd] (grouped-query when KV &lt; H;
    /// offset > 0 when earlier keys come from a <see cref="KvCache"/>).
    /// Scores = q k^T * scale, optionally soft-capped (cap * tanh(s / cap)), causally masked and, with a
    /// sliding window w, also masked where query - key &gt;= w (the key window (q - w, q]); softmax in float32.
    /// Returns [B, H, T, hd].
    /// </summary>
    public static Tensor Attention(Tensor q, Tensor k, Tensor v, double scale, double? softcap = null, int? window = null, int offset = 0)
    {
        long heads = q.shape[1], kvHeads = k.shape[1], t = q.shape[2], tk = k.shape[2];
        if (kvHeads != heads)
        {
            k = k.repeat_interleave(heads / kvHeads, dim: 1);
            v = v.repeat_interleave(heads / kvHeads, dim: 1);
        }
        // Torch's fused scaled-dot-product attention where its semantics are these: the default scale
        // 1/sqrt(hd), no soft-cap, no window, and a causal mask it can express (no cached keys: is_causal; one
        // query after cached keys: no mask). Otherwise (Gemma-2's capped, windowed, pre-scaled attention; a
        // multi-token step after a cache) the eager path below. Same result up to float rounding (parity tests).
        if (softcap is null && window is null && Math.Abs(scale * Math.Sqrt(q.shape[3]) - 1) < 1e-12 && (offset == 0 || t == 1))
            return F.scaled_dot_product_attention(q, k, v, null, 0.0, offset == 0 && t > 1); // last: is_causal (TorchSharp spells it is_casual)
        var scores = matmul(q, k.transpose(-2, -1)) * scale;
        if (softcap is { } cap) scores = tanh(scores / cap) * cap;
        // query i sits at position offset + i (after cached keys), key j at position j
        var queryPos = arange(offset, offset + t, dtype: ScalarType.Int64, device: q.device).unsqueeze(1);
        var keyPos = arange(tk, dtype: ScalarType.Int64, device: q.device).unsqueeze(0);
        var mask = keyPos > queryPos;
        if (window is { } w) mask = mask.logical_or(queryPos - keyPos >= w);
        var weights = F.softmax(scores.masked_fill(mask, float.NegativeInfinity).to(ScalarType.Float32), dim: -1).to(q.dtype);
        return matmul(weights, v);
    }
}
