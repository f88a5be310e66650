using Stitching.Core.Errors;
using Stitching.Models.Runtime;
using static TorchSharp.torch;

namespace Stitching.Models.Families;

/// <summary>
/// GPT-2 as Hugging Face computes it (modeling_gpt2): learned positions, pre-LN blocks, Conv1D weights
/// stored [in, out] (transposed here to nn.Linear's [out, in]), gelu_new, causal softmax attention
/// scaled by 1/sqrt(head_dim), final LayerNorm, unembedding tied to wte. Keys load with or without the
/// "transformer." prefix; the stored attention-mask buffers (attn.bias, attn.masked_bias) are ignored.
/// </summary>
public sealed class Gpt2 : CausalLm
{
    private static readonly string[] Prefixes = ["", "transformer."];
    private readonly Tensor _wte, _wpe, _lnfW, _lnfB;
    private readonly Block[] _blocks;
    private readonly double _eps;
    private readonly int _heads, _positions;
    private readonly Func<Tensor, Tensor> _act;

    private sealed record Block(Tensor Ln1W, Tensor Ln1B, Tensor AttnW, Tensor AttnB, Tensor ProjW, Tensor ProjB,
                                Tensor Ln2W, Tensor Ln2B, Tensor FcW, Tensor FcB, Tensor MlpProjW, Tensor MlpProjB);

    public Gpt2(Checkpoint ck, ScalarType dtype, Device device)
        : base("gpt2", ck.Int("n_layer"), ck.Int("n_embd"), ck.Int("vocab_size"), dtype, device)
    {
        if (ck.Bool("scale_attn_by_inverse_layer_idx", false) || ck.Bool("reorder_and_upcast_attn", false))
            throw StitchingException.FailedPrecondition("GPT-2 options scale_attn_by_inverse_layer_idx / reorder_and_upcast_attn are not supported.", "model");
        _act = Ops.Activation(ck.String("activation_function", "gelu_new"));
        _heads = ck.Int("n_head");
        _positions = ck.Int("n_positions", 1024);
        _eps = ck.Double("layer_norm_epsilon", 1e-5);
        Tensor W(string name) => Param(ck.Load(name, Prefixes));
        Tensor Conv(string name) => Param(ck.Load(name, Prefixes).t().contiguous());
        _wte = W("wte.weight");
        _wpe = W("wpe.weight");
        _lnfW = W("ln_f.weight");
        _lnfB = W("ln_f.bias");
        _blocks = Enumerable.Range(0, Layers).Select(l => new Block(
            W($"h.{l}.ln_1.weight"), W($"h.{l}.ln_1.bias"),
            Conv($"h.{l}.attn.c_attn.weight"), W($"h.{l}.attn.c_attn.bias"),
            Conv($"h.{l}.attn.c_proj.weight"), W($"h.{l}.attn.c_proj.bias"),
            W($"h.{l}.ln_2.weight"), W($"h.{l}.ln_2.bias"),
            Conv($"h.{l}.mlp.c_fc.weight"), W($"h.{l}.mlp.c_fc.bias"),
            Conv($"h.{l}.mlp.c_proj.weight"), W($"h.{l}.mlp.c_proj.bias"))).ToArray();
    }

    public override int? MaxPositions => _positions;

    protected override Tensor Embed(Tensor ids) => _wte[ids] + _wpe[arange(Offset, Offset + ids.shape[1], dtype: ScalarType.Int64, device: Device)];

    protected override Tensor RunBlock(int layer, Tensor x, HookFn hook)
    {
        var b = _blocks[layer];
        x = hook(HookSite.ResidPre, x);
        var h = Ops.LayerNorm(x, b.Ln1W, b.Ln1B, _eps);
        var qkv = Ops.Linear(h, b.AttnW, b.AttnB).split(Width, dim: -1);
        var hd = Width / _heads;
        var step = Step(layer);
        var (k, v) = step.Extend(Ops.SplitHeads(qkv[1], _heads, hd), Ops.SplitHeads(qkv[2], _heads, hd));
        var y = Ops.Attention(Ops.SplitHeads(qkv[0], _heads, hd), k, v, 1 / Math.Sqrt(hd), offset: step.Offset);
        var attn = hook(HookSite.AttnOut, Ops.Linear(Ops.MergeHeads(y), b.ProjW, b.ProjB));
        x = hook(HookSite.ResidMid, x + attn);
        var mlp = hook(HookSite.MlpOut, Ops.Linear(_act(Ops.Linear(Ops.LayerNorm(x, b.Ln2W, b.Ln2B, _eps), b.FcW, b.FcB)), b.MlpProjW, b.MlpProjB));
        return hook(HookSite.ResidPost, x + mlp);
    }

    protected override Tensor FinalNorm(Tensor x) => Ops.LayerNorm(x, _lnfW, _lnfB, _eps);

    protected override Tensor UnembeddingWeight => _wte;

    protected override Tensor Unembed(Tensor normalized) => Ops.Linear(normalized, _wte);
}
