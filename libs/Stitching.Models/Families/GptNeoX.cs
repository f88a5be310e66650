using Stitching.Models.Runtime;
using static TorchSharp.torch;

namespace Stitching.Models.Families;

/// <summary>
/// GPT-NeoX / Pythia as Hugging Face computes it (modeling_gpt_neox): fused query_key_value [3d, d]
/// laid out per head (the output viewed as [B, T, H, 3 hd] splits into q, k, v per head), partial
/// rotary over the first head_dim * rotary_pct dims, LayerNorm before attention and MLP, parallel
/// residual x + attn(ln1(x)) + mlp(ln2(x)) or sequential when use_parallel_residual is false, untied
/// embed_out. Stored buffers (attention.bias, masked_bias, rotary_emb.inv_freq) are ignored.
/// </summary>
public sealed class GptNeoX : CausalLm
{
    private const string P = "gpt_neox.";
    private readonly Tensor _embed, _lnfW, _lnfB, _unembed;
    private readonly NeoXBlockWeights[] _blocks;
    private readonly double _eps;
    private readonly bool _parallel;
    private readonly NeoXLayer _layer;

    public GptNeoX(Checkpoint ck, ScalarType dtype, Device device)
        : base("gpt_neox", ck.Int("num_hidden_layers"), ck.Int("hidden_size"), ck.Int("vocab_size"), dtype, device)
    {
        var heads = ck.Int("num_attention_heads");
        var headDim = Width / heads;
        _eps = ck.Double("layer_norm_eps", 1e-5);
        _parallel = ck.Bool("use_parallel_residual", true);
        // GPTNeoXConfig sets rope_theta from rotary_emb_base and ignores a top-level rope_theta key
        // (transformers 4.x); transformers 5 writes rope_parameters.rope_theta.
        var theta = ck.RopeParameter("rope_theta") ?? ck.Double("rotary_emb_base", 10000);
        var rotary = new Rotary((int)(headDim * ck.Double("rotary_pct", 0.25)), theta,
            ck.Config.TryGetProperty("rope_scaling", out var rs) ? rs : null);
        _layer = new NeoXLayer(heads, headDim, _eps, _parallel, rotary, Ops.Activation(ck.String("hidden_act", "gelu")));
        Tensor W(string name) => Param(ck.Load(name));
        Tensor? B(string name) => OptionalParam(ck.TryLoad(name));
        _embed = W(P + "embed_in.weight");
        _lnfW = W(P + "final_layer_norm.weight");
        _lnfB = W(P + "final_layer_norm.bias");
        _unembed = ck.Bool("tie_word_embeddings", false) && !ck.HasWeight("embed_out.weight") ? _embed : W("embed_out.weight");
        _blocks = Enumerable.Range(0, Layers).Select(l =>
        {
            var p = $"{P}layers.{l}.";
            return new NeoXBlockWeights(W(p + "input_layernorm.weight"), W(p + "input_layernorm.bias"),
                W(p + "attention.query_key_value.weight"), B(p + "attention.query_key_value.bias"),
                W(p + "attention.dense.weight"), B(p + "attention.dense.bias"),
                W(p + "post_attention_layernorm.weight"), W(p + "post_attention_layernorm.bias"),
                W(p + "mlp.dense_h_to_4h.weight"), W(p + "mlp.dense_h_to_4h.bias"),
                W(p + "mlp.dense_4h_to_h.weight"), W(p + "mlp.dense_4h_to_h.bias"));
        }).ToArray();
    }

    public override bool HasResidMid => !_parallel;

    protected override Tensor Embed(Tensor ids) => _embed[ids];

    protected override Tensor RunBlock(int layer, Tensor x, HookFn hook) => _layer.Run(_blocks[layer], x, hook, Step(layer));

    protected override Tensor FinalNorm(Tensor x) => Ops.LayerNorm(x, _lnfW, _lnfB, _eps);

    protected override Tensor UnembeddingWeight => _unembed;

    protected override Tensor Unembed(Tensor normalized) => Ops.Linear(normalized, _unembed);
}
