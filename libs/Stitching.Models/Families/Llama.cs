using Stitching.Core.Errors;
using Stitching.Models.Runtime;
using static TorchSharp.torch;

namespace Stitching.Models.Families;

/// <summary>
/// The Llama family as Hugging Face computes it (modeling_llama, modeling_qwen2, modeling_mistral):
/// RMSNorm (float32 normalise, cast, times w), rotate-half rotary with rope_theta (and llama3
/// rope_scaling), grouped-query attention with explicit head_dim, SwiGLU MLP down(act(gate) * up),
/// optional q/k/v/o and MLP biases (Qwen2 has q/k/v biases; read from the checkpoint when present),
/// tied or untied lm_head. Mistral's sliding_window applies to every layer.
/// </summary>
public sealed class Llama : CausalLm
{
    private const string P = "model.";
    private readonly Tensor _embed, _norm, _head;
    private readonly Block[] _blocks;
    private readonly double _eps;
    private readonly int? _window;
    private readonly Rotary _rotary;
    private readonly Func<Tensor, Tensor> _act;
    private readonly double _scale;

    private sealed record Block(Tensor InNorm, SelfAttention Attn, Tensor PostNorm, Tensor Gate, Tensor? GateB, Tensor Up, Tensor? UpB, Tensor Down, Tensor? DownB);

    public Llama(Checkpoint ck, ScalarType dtype, Device device)
        : base(ck.ModelType, ck.Int("num_hidden_layers"), ck.Int("hidden_size"), ck.Int("vocab_size"), dtype, device)
    {
        if (ck.Bool("use_sliding_window", false))
            throw StitchingException.FailedPrecondition("Qwen2 use_sliding_window=true is not supported.", "model");
        var heads = ck.Int("num_attention_heads");
        var kvHeads = ck.Int("num_key_value_heads", heads);
        var headDim = ck.Int("head_dim", Width / heads);
        _eps = ck.Double("rms_norm_eps", 1e-6);
        _window = ck.ModelType == "mistral" && ck.Has("sliding_window") ? ck.Int("sliding_window") : null;
        _act = Ops.Activation(ck.String("hidden_act", "silu"));
        _scale = 1 / Math.Sqrt(headDim);
        _rotary = new Rotary((int)(headDim * ck.Double("partial_rotary_factor", 1.0)), ck.RopeParameter("rope_theta") ?? ck.Double("rope_theta", 10000),
            ck.Config.TryGetProperty("rope_scaling", out var rs) ? rs : null);
        Tensor W(string name) => Param(ck.Load(name));
        Tensor? B(string name) => OptionalParam(ck.TryLoad(name));
        _embed = W(P + "embed_tokens.weight");
        _norm = W(P + "norm.weight");
        _head = ck.HasWeight("lm_head.weight") ? W("lm_head.weight")
            : ck.Bool("tie_word_embeddings", true) ? _embed
            : throw StitchingException.FailedPrecondition($"checkpoint {ck.Directory} has tie_word_embeddings=false but no lm_head.weight.", "model");
        _blocks = Enumerable.Range(0, Layers).Select(l =>
        {
            var p = $"{P}layers.{l}.";
            var attn = SelfAttention.Load(p, W, B, heads, kvHeads, headDim);
            return new Block(W(p + "input_layernorm.weight"), attn, W(p + "post_attention_layernorm.weight"),
                W(p + "mlp.gate_proj.weight"), B(p + "mlp.gate_proj.bias"), W(p + "mlp.up_proj.weight"), B(p + "mlp.up_proj.bias"),
                W(p + "mlp.down_proj.weight"), B(p + "mlp.down_proj.bias"));
        }).ToArray();
    }

    protected override Tensor Embed(Tensor ids) => _embed[ids];

    protected override Tensor RunBlock(int layer, Tensor x, HookFn hook)
    {
        var b = _blocks[layer];
        x = hook(HookSite.ResidPre, x);
        var attn = hook(HookSite.AttnOut, b.Attn.Forward(Ops.RmsNorm(x, b.InNorm, _eps), _rotary, _scale, window: _window, step: Step(layer)));
        x = hook(HookSite.ResidMid, x + attn);
        var h = Ops.RmsNorm(x, b.PostNorm, _eps);
        var mlp = hook(HookSite.MlpOut, Ops.Linear(_act(Ops.Linear(h, b.Gate, b.GateB)) * Ops.Linear(h, b.Up, b.UpB), b.Down, b.DownB));
        return hook(HookSite.ResidPost, x + mlp);
    }

    protected override Tensor FinalNorm(Tensor x) => Ops.RmsNorm(x, _norm, _eps);

    protected override Tensor UnembeddingWeight => _head;

    protected override Tensor Unembed(Tensor normalized) => Ops.Linear(normalized, _head);
}
