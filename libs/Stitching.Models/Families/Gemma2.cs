using Stitching.Models.Runtime;
using static TorchSharp.torch;

namespace Stitching.Models.Families;

/// <summary>
/// Gemma-2 as Hugging Face computes it (modeling_gemma2): embeddings times sqrt(hidden_size) (the
/// normaliser cast to the activations' dtype), sandwich norms (input, post_attention, pre_feedforward,
/// post_feedforward) with Gemma's (1 + w) RMSNorm, attention scaled by query_pre_attn_scalar^-1/2 with
/// attention logit soft-capping, sliding-window attention on even layers (0, 2, ...) and global
/// attention on odd ones, GeGLU MLP (gelu_pytorch_tanh), final logit soft-capping, tied embeddings.
/// hook_attn_out / hook_mlp_out are the branch outputs after their post-norms (what joins the residual).
/// </summary>
public sealed class Gemma2 : CausalLm
{
    private const string P = "model.";
    private readonly Tensor _embed, _norm;
    private readonly Block[] _blocks;
    private readonly double _eps, _scale, _hiddenScale;
    private readonly double? _attnCap, _finalCap;
    private readonly int? _window;
    private readonly Rotary _rotary;
    private readonly Func<Tensor, Tensor> _act;

    private sealed record Block(Tensor InNorm, SelfAttention Attn, Tensor PostAttnNorm, Tensor PreFfNorm, Tensor PostFfNorm, Tensor Gate, Tensor Up, Tensor Down);

    public Gemma2(Checkpoint ck, ScalarType dtype, Device device)
        : base("gemma2", ck.Int("num_hidden_layers"), ck.Int("hidden_size"), ck.Int("vocab_size"), dtype, device)
    {
        var heads = ck.Int("num_attention_heads");
        var kvHeads = ck.Int("num_key_value_heads", heads);
        var headDim = ck.Int("head_dim", 256);
        _eps = ck.Double("rms_norm_eps", 1e-6);
        _scale = 1 / Math.Sqrt(ck.Double("query_pre_attn_scalar", headDim));
        _attnCap = ck.OptionalDouble("attn_logit_softcapping");
        _finalCap = ck.OptionalDouble("final_logit_softcapping");
        _window = ck.Has("sliding_window") ? ck.Int("sliding_window") : null;
        _hiddenScale = Math.Sqrt(Width);
        _act = Ops.Activation(ck.String("hidden_activation", ck.String("hidden_act", "gelu_pytorch_tanh")));
        _rotary = new Rotary(headDim, ck.RopeParameter("rope_theta") ?? ck.Double("rope_theta", 10000));
        Tensor W(string name) => Param(ck.Load(name));
        Tensor? B(string name) => OptionalParam(ck.TryLoad(name));
        _embed = W(P + "embed_tokens.weight");
        _norm = W(P + "norm.weight");
        _blocks = Enumerable.Range(0, Layers).Select(l =>
        {
            var p = $"{P}layers.{l}.";
            var attn = SelfAttention.Load(p, W, B, heads, kvHeads, headDim);
            return new Block(W(p + "input_layernorm.weight"), attn, W(p + "post_attention_layernorm.weight"),
                W(p + "pre_feedforward_layernorm.weight"), W(p + "post_feedforward_layernorm.weight"),
                W(p + "mlp.gate_proj.weight"), W(p + "mlp.up_proj.weight"), W(p + "mlp.down_proj.weight"));
        }).ToArray();
    }

    /// <summary>Whether a layer uses sliding-window attention (Hugging Face: layer_idx % 2 == 0).</summary>
    public static bool IsSliding(int layer) => layer % 2 == 0;

    protected override Tensor Embed(Tensor ids) => _embed[ids] * tensor(_hiddenScale, dtype: DType, device: Device);

    protected override Tensor RunBlock(int layer, Tensor x, HookFn hook)
    {
        var b = _blocks[layer];
        x = hook(HookSite.ResidPre, x);
        var window = IsSliding(layer) ? _window : null;
        var attn = b.Attn.Forward(Ops.GemmaRmsNorm(x, b.InNorm, _eps), _rotary, _scale, _attnCap, window, Step(layer));
        attn = hook(HookSite.AttnOut, Ops.GemmaRmsNorm(attn, b.PostAttnNorm, _eps));
        x = hook(HookSite.ResidMid, x + attn);
        var h = Ops.GemmaRmsNorm(x, b.PreFfNorm, _eps);
        var mlp = Ops.Linear(_act(Ops.Linear(h, b.Gate)) * Ops.Linear(h, b.Up), b.Down);
        mlp = hook(HookSite.MlpOut, Ops.GemmaRmsNorm(mlp, b.PostFfNorm, _eps));
        return hook(HookSite.ResidPost, x + mlp);
    }

    protected override Tensor FinalNorm(Tensor x) => Ops.GemmaRmsNorm(x, _norm, _eps);

    protected override Tensor UnembeddingWeight => _embed;

    protected override Tensor Unembed(Tensor normalized)
    {
        var logits = Ops.Linear(normalized, _embed);
        return _finalCap is { } cap ? tanh(logits / cap) * cap : logits;
    }
}
