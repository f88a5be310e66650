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
    private readonly Block[] _blocks;
    private readonly double _eps;
    private readonly int _heads, _headDim;
    private readonly bool _parallel;
    private readonly Rotary _rotary;
    private readonly Func<Tensor, Tensor> _act;

    private sealed record Block(Tensor Ln1W, Tensor Ln1B, Tensor QkvW, Tensor? QkvB, Tensor DenseW, Tensor? DenseB,
                                Tensor Ln2W, Tensor Ln2B, Tensor UpW, Tensor UpB, Tensor DownW, Tensor DownB);

    public GptNeoX(Checkpoint ck, ScalarType dtype, Device device)
        : base("gpt_neox", ck.Int("num_hidden_layers"), ck.Int("hidden_size"), ck.Int("vocab_size"), dtype, device)
    {
        _heads = ck.Int("num_attention_heads");
        _headDim = Width / _heads;
        _eps = ck.Double("layer_norm_eps", 1e-5);
        _parallel = ck.Bool("use_parallel_residual", true);
        _act = Ops.Activation(ck.String("hidden_act", "gelu"));
        // GPTNeoXConfig sets rope_theta from rotary_emb_base and ignores a top-level rope_theta key
        // (transformers 4.x); transformers 5 writes rope_parameters.rope_theta.
        var theta = ck.RopeParameter("rope_theta") ?? ck.Double("rotary_emb_base", 10000);
        _rotary = new Rotary((int)(_headDim * ck.Double("rotary_pct", 0.25)), theta,
            ck.Config.TryGetProperty("rope_scaling", out var rs) ? rs : null);
        Tensor W(string name) => Param(ck.Load(name));
        Tensor? B(string name) => OptionalParam(ck.TryLoad(name));
        _embed = W(P + "embed_in.weight");
        _lnfW = W(P + "final_layer_norm.weight");
        _lnfB = W(P + "final_layer_norm.bias");
        _unembed = ck.Bool("tie_word_embeddings", false) && !ck.HasWeight("embed_out.weight") ? _embed : W("embed_out.weight");
        _blocks = Enumerable.Range(0, Layers).Select(l =>
        {
            var p = $"{P}layers.{l}.";
            return new Block(W(p + "input_layernorm.weight"), W(p + "input_layernorm.bias"),
                W(p + "attention.query_key_value.weight"), B(p + "attention.query_key_value.bias"),
                W(p + "attention.dense.weight"), B(p + "attention.dense.bias"),
                W(p + "post_attention_layernorm.weight"), W(p + "post_attention_layernorm.bias"),
                W(p + "mlp.dense_h_to_4h.weight"), W(p + "mlp.dense_h_to_4h.bias"),
                W(p + "mlp.dense_4h_to_h.weight"), W(p + "mlp.dense_4h_to_h.bias"));
        }).ToArray();
    }

    public override bool HasResidMid => !_parallel;

    protected override Tensor Embed(Tensor ids) => _embed[ids];

    protected override Tensor RunBlock(int layer, Tensor x, HookFn hook)
    {
        var b = _blocks[layer];
        x = hook(HookSite.ResidPre, x);
        var attn = hook(HookSite.AttnOut, Attention(Ops.LayerNorm(x, b.Ln1W, b.Ln1B, _eps), b));
        Tensor Mlp(Tensor input) => hook(HookSite.MlpOut,
            Ops.Linear(_act(Ops.Linear(Ops.LayerNorm(input, b.Ln2W, b.Ln2B, _eps), b.UpW, b.UpB)), b.DownW, b.DownB));
        if (_parallel) return hook(HookSite.ResidPost, x + attn + Mlp(x));
        x = hook(HookSite.ResidMid, x + attn);
        return hook(HookSite.ResidPost, x + Mlp(x));
    }

    private Tensor Attention(Tensor h, Block b)
    {
        long batch = h.shape[0], t = h.shape[1];
        var qkv = Ops.Linear(h, b.QkvW, b.QkvB).view(batch, t, _heads, 3 * _headDim).transpose(1, 2);
        var parts = qkv.split(_headDim, dim: -1);
        var (cos, sin) = _rotary.Tables(t, h.dtype, h.device);
        var q = _rotary.Apply(parts[0], cos, sin);
        var k = _rotary.Apply(parts[1], cos, sin);
        var y = Ops.Attention(q, k, parts[2], 1 / Math.Sqrt(_headDim));
        return Ops.Linear(Ops.MergeHeads(y), b.DenseW, b.DenseB);
    }

    protected override Tensor FinalNorm(Tensor x) => Ops.LayerNorm(x, _lnfW, _lnfB, _eps);

    protected override Tensor Unembed(Tensor normalized) => Ops.Linear(normalized, _unembed);
}
