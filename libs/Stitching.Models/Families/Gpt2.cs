using Stitching.Core.Errors;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Stitching.Models.Families;

/// <summary>
/// GPT-2 as Hugging Face computes it (modeling_gpt2): learned positions, pre-LN blocks, Conv1D weights
/// stored [in, out] (so y = x W + b), gelu_new, causal softmax attention scaled by 1/sqrt(head_dim),
/// final LayerNorm, unembedding tied to wte. Keys with or without the "transformer." prefix load;
/// the stored attention-mask buffers (attn.bias, attn.masked_bias) are ignored.
/// </summary>
public sealed class Gpt2 : IDisposable
{
    private readonly Tensor _wte, _wpe, _lnfW, _lnfB;
    private readonly Block[] _blocks;
    private readonly double _eps;
    private readonly int _heads;

    private sealed record Block(Tensor Ln1W, Tensor Ln1B, Tensor AttnW, Tensor AttnB, Tensor ProjW, Tensor ProjB,
                                Tensor Ln2W, Tensor Ln2B, Tensor FcW, Tensor FcB, Tensor MlpProjW, Tensor MlpProjB);

    private Gpt2(Checkpoint ck)
    {
        var act = ck.String("activation_function", "gelu_new");
        if (act is not ("gelu_new" or "gelu_pytorch_tanh"))
            throw StitchingException.FailedPrecondition($"GPT-2 activation_function '{act}' is not supported; gelu_new is.", "model");
        Layers = ck.Int("n_layer");
        _heads = ck.Int("n_head");
        Width = ck.Int("n_embd");
        _eps = ck.Double("layer_norm_epsilon", 1e-5);
        string[] p = ["", "transformer."];
        _wte = ck.Load("wte.weight", p);
        _wpe = ck.Load("wpe.weight", p);
        _lnfW = ck.Load("ln_f.weight", p);
        _lnfB = ck.Load("ln_f.bias", p);
        _blocks = Enumerable.Range(0, Layers).Select(l => new Block(
            ck.Load($"h.{l}.ln_1.weight", p), ck.Load($"h.{l}.ln_1.bias", p),
            ck.Load($"h.{l}.attn.c_attn.weight", p), ck.Load($"h.{l}.attn.c_attn.bias", p),
            ck.Load($"h.{l}.attn.c_proj.weight", p), ck.Load($"h.{l}.attn.c_proj.bias", p),
            ck.Load($"h.{l}.ln_2.weight", p), ck.Load($"h.{l}.ln_2.bias", p),
            ck.Load($"h.{l}.mlp.c_fc.weight", p), ck.Load($"h.{l}.mlp.c_fc.bias", p),
            ck.Load($"h.{l}.mlp.c_proj.weight", p), ck.Load($"h.{l}.mlp.c_proj.bias", p))).ToArray();
    }

    public int Layers { get; }
    public int Width { get; }

    public static Gpt2 Load(Checkpoint ck)
    {
        using var scope = NewDisposeScope();
        var model = new Gpt2(ck);
        foreach (var t in model.AllTensors()) t.MoveToOuterDisposeScope();
        return model;
    }

    /// <summary>
    /// Runs ids [B, T] (int64) and returns the captured hooks ([B, T, d] each) and, when asked, logits
    /// [B, T, V]. Without logits the pass stops after the last block a captured hook needs.
    /// </summary>
    public (Dictionary<HookPoint, Tensor> Hooks, Tensor? Logits) Forward(Tensor ids, IReadOnlyCollection<HookPoint> capture, bool logits)
    {
        using var _ = no_grad();
        var want = capture.ToHashSet();
        var lastLayer = logits || want.Any(h => h.Site == HookSite.FinalNormalized) ? Layers - 1
            : want.Select(h => h.Layer).DefaultIfEmpty(-1).Max();
        var hooks = new Dictionary<HookPoint, Tensor>();
        void Hook(HookSite site, int layer, Tensor t) { var h = new HookPoint(site, layer); if (want.Contains(h)) hooks[h] = t.clone(); }

        var t = ids.shape[1];
        var x = _wte[ids] + _wpe[arange(t, dtype: ScalarType.Int64)];
        for (var l = 0; l <= lastLayer; l++)
        {
            var b = _blocks[l];
            Hook(HookSite.ResidPre, l, x);
            var attn = Attention(F.layer_norm(x, [Width], b.Ln1W, b.Ln1B, _eps), b);
            Hook(HookSite.AttnOut, l, attn);
            x = x + attn;
            Hook(HookSite.ResidMid, l, x);
            var mlp = matmul(GeluNew(matmul(F.layer_norm(x, [Width], b.Ln2W, b.Ln2B, _eps), b.FcW) + b.FcB), b.MlpProjW) + b.MlpProjB;
            Hook(HookSite.MlpOut, l, mlp);
            x = x + mlp;
            Hook(HookSite.ResidPost, l, x);
        }
        if (lastLayer < Layers - 1) return (hooks, null);
        var normalized = F.layer_norm(x, [Width], _lnfW, _lnfB, _eps);
        Hook(HookSite.FinalNormalized, Layers, normalized);
        return (hooks, logits ? matmul(normalized, _wte.t()) : null);
    }

    private Tensor Attention(Tensor h, Block b)
    {
        long batch = h.shape[0], t = h.shape[1], hd = Width / _heads;
        var qkv = matmul(h, b.AttnW) + b.AttnB;
        var parts = qkv.split(Width, dim: -1);
        Tensor Heads(Tensor z) => z.view(batch, t, _heads, hd).transpose(1, 2);
        var (q, k, v) = (Heads(parts[0]), Heads(parts[1]), Heads(parts[2]));
        var scores = matmul(q, k.transpose(-2, -1)) / Math.Sqrt(hd);
        var causal = ones(t, t, dtype: ScalarType.Bool).triu(1);
        var weights = F.softmax(scores.masked_fill(causal, float.NegativeInfinity), dim: -1);
        var y = matmul(weights, v).transpose(1, 2).reshape(batch, t, Width);
        return matmul(y, b.ProjW) + b.ProjB;
    }

    // gelu_new: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
    private static Tensor GeluNew(Tensor x) => 0.5 * x * (1 + tanh(Math.Sqrt(2 / Math.PI) * (x + 0.044715 * pow(x, 3))));

    private IEnumerable<Tensor> AllTensors() =>
        new[] { _wte, _wpe, _lnfW, _lnfB }.Concat(_blocks.SelectMany(b => new[] { b.Ln1W, b.Ln1B, b.AttnW, b.AttnB, b.ProjW, b.ProjB, b.Ln2W, b.Ln2B, b.FcW, b.FcB, b.MlpProjW, b.MlpProjB }));

    public void Dispose()
    {
        foreach (var t in AllTensors()) t.Dispose();
    }
}
