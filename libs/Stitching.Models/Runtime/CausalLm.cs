using Stitching.Core.Errors;
using TorchSharp;
using static TorchSharp.torch;

namespace Stitching.Models.Runtime;

/// <summary>Called at every hook a block passes; returns the value the forward continues with.</summary>
public delegate Tensor HookFn(HookSite site, Tensor value);

/// <summary>
/// A decoder-only language model split the way TransformerLens names it: embed -> blocks (resid_pre,
/// attn_out, resid_mid, mlp_out, resid_post) -> final norm (ln_final.hook_normalized) -> unembed.
/// Families implement the four pieces; the forward driver here owns hooks, interventions, stopping
/// after the last needed layer and starting at a layer from a supplied residual stream.
/// </summary>
public abstract class CausalLm : IDisposable
{
    private readonly List<Tensor> _parameters = [];
    private KvCache? _cache;

    protected CausalLm(string family, int layers, int width, int vocabSize, ScalarType dtype, Device device)
    {
        Family = family;
        Layers = layers;
        Width = width;
        VocabSize = vocabSize;
        DType = dtype;
        Device = device;
    }

    public string Family { get; }
    public int Layers { get; }
    public int Width { get; }
    public int VocabSize { get; }
    public ScalarType DType { get; }
    public Device Device { get; }

    /// <summary>False where attention and MLP read the same input (GPT-NeoX parallel residual): no hook_resid_mid.</summary>
    public virtual bool HasResidMid => true;

    /// <summary>Largest context the position scheme supports (learned positions), or null when unbounded.</summary>
    public virtual int? MaxPositions => null;

    public long ParameterCount => _parameters.Sum(p => p.numel());

    /// <summary>
    /// Analytic forward FLOPs for rows of <paramref name="tokens"/> tokens through <paramref name="blocks"/>
    /// blocks (docs/flops.md): per block 2 T P_block (every weight matrix of the block once per token)
    /// + 4 T^2 d (scores and weighted sum over the full causal square), plus 2 T d V for the unembedding.
    /// </summary>
    public double ForwardFlops(long rows, int tokens, int blocks, bool logits)
    {
        var blockMatrixParams = _parameters.Where(p => p.dim() == 2 && p.shape[0] != VocabSize && p.shape[1] != VocabSize && p.shape[0] != MaxPositions)
            .Sum(p => (double)p.numel()) / Layers;
        var perRow = blocks * (2.0 * tokens * blockMatrixParams + 4.0 * tokens * tokens * Width) + (logits ? 2.0 * tokens * Width * VocabSize : 0);
        return rows * perRow;
    }

    /// <summary>Converts a float32 weight to the model's dtype and device and keeps it alive with the model.</summary>
    protected Tensor Param(Tensor w)
    {
        var p = w.to(DType, Device).DetachFromDisposeScope();
        if (!ReferenceEquals(p, w)) w.Dispose();
        _parameters.Add(p);
        return p;
    }

    protected Tensor? OptionalParam(Tensor? w) => w is null ? null : Param(w);

    /// <summary>Position of the first token of the running forward: the cached length with a <see cref="KvCache"/>, else 0.</summary>
    protected int Offset => _cache?.Length ?? 0;

    /// <summary>What layer <paramref name="layer"/>'s attention needs of the running forward's cache.</summary>
    protected AttentionStep Step(int layer) => new(Offset, _cache, layer);

    /// <summary>Token embeddings (and any scaling or position embedding) for ids [B, T] at positions Offset..: resid_pre of layer 0.</summary>
    protected abstract Tensor Embed(Tensor ids);

    /// <summary>One block; must pass every site it computes through <paramref name="hook"/>.</summary>
    protected abstract Tensor RunBlock(int layer, Tensor x, HookFn hook);

    protected abstract Tensor FinalNorm(Tensor x);

    protected abstract Tensor Unembed(Tensor normalized);

    /// <summary>The unembedding weight [V, d] (logits = normalized @ W^T, before any final softcap); tied models return the embedding.</summary>
    protected abstract Tensor UnembeddingWeight { get; }

    /// <summary>W_U [d, V] in float32 on the CPU (TransformerLens's orientation), a copy the caller owns.</summary>
    public Tensor UnembeddingMatrix()
    {
        using var scope = NewDisposeScope();
        return UnembeddingWeight.detach().to(ScalarType.Float32).cpu().t().contiguous().clone().MoveToOuterDisposeScope();
    }

    /// <summary>Validates a hook against this model (resid_mid does not exist under a parallel residual).</summary>
    public HookPoint ParseHook(string name, string field = "hooks")
    {
        var h = HookPoint.Parse(name, Layers, field);
        if (h.Site == HookSite.ResidMid && !HasResidMid)
            throw StitchingException.InvalidArgument(field, $"'{name}': this {Family} model uses a parallel residual (attention and MLP read the same input), so it has no hook_resid_mid; use hook_resid_pre, hook_attn_out, hook_mlp_out or hook_resid_post.");
        return h;
    }

    public ForwardResult Forward(ForwardRequest request)
    {
        if (request.Cache is not { } cache) return Run(request);
        if (request.StartResidual is not null || request.StartLayer != 0)
            throw StitchingException.InvalidArgument("start_layer", "a KV-cached forward starts at the embeddings.");
        if (request.Ids is { } ids && MaxPositions is { } max && cache.Length + ids.shape[^1] > max)
            throw StitchingException.InvalidArgument("token_ids", $"{cache.Length} cached + {ids.shape[^1]} new tokens exceed the model's {max} positions.");
        _cache = cache;
        try
        {
            var result = Run(request with { Logits = true }); // every layer runs, so every layer's cache grows
            cache.Advance((int)request.Ids!.shape[^1]);
            return request.Logits ? result : result with { Logits = null };
        }
        finally { _cache = null; }
    }

    private ForwardResult Run(ForwardRequest request)
    {
        using var _ = no_grad();
        var start = request.StartLayer;
        if (start < 0 || start > Layers)
            throw StitchingException.InvalidArgument("start_layer", $"{start} is outside 0..{Layers}.");
        Tensor x;
        if (request.StartResidual is { } residual)
        {
            if (residual.dim() != 3 || residual.shape[2] != Width || residual.shape[0] == 0 || residual.shape[1] == 0)
                throw StitchingException.InvalidArgument("start_residual", $"shape [{string.Join(", ", residual.shape)}] must be [batch, tokens, {Width}] with batch and tokens >= 1.");
            if (MaxPositions is { } maxStart && residual.shape[1] > maxStart)
                throw StitchingException.InvalidArgument("start_residual", $"{residual.shape[1]} tokens exceed the model's {maxStart} positions.");
            x = residual.to(DType, Device);
        }
        else
        {
            if (start != 0) throw StitchingException.InvalidArgument("start_residual", $"starting at layer {start} needs the residual stream entering that layer.");
            var ids = request.Ids ?? throw StitchingException.InvalidArgument("token_ids", "give token ids (or a start residual).");
            if (ids.dim() != 2 || ids.shape[0] == 0 || ids.shape[1] == 0)
                throw StitchingException.InvalidArgument("token_ids", $"shape [{string.Join(", ", ids.shape)}] must be [batch, tokens] (or [tokens]) with batch and tokens >= 1.");
            if (MaxPositions is { } max && ids.shape[1] > max)
                throw StitchingException.InvalidArgument("token_ids", $"{ids.shape[1]} tokens exceed the model's {max} positions; use a shorter context.");
            var (lo, hi) = (ids.min().item<long>(), ids.max().item<long>());
            if (lo < 0 || hi >= VocabSize)
                throw StitchingException.InvalidArgument("token_ids", $"ids must lie in 0..{VocabSize - 1}; got {lo}..{hi}.");
            x = Embed(ids.to(ScalarType.Int64, Device));
        }

        var captured = new Dictionary<HookPoint, Tensor>();
        var want = request.Capture.ToHashSet();
        var needFinal = request.Logits || want.Contains(new HookPoint(HookSite.FinalNormalized, Layers));
        var lastLayer = needFinal ? Layers - 1 : want.Select(h => h.Layer).DefaultIfEmpty(start - 1).Max();

        Tensor Visit(HookPoint h, Tensor value)
        {
            if (request.Interventions.TryGetValue(h, out var list))
                foreach (var intervention in list) value = intervention.Apply(value, Offset);
            if (want.Contains(h)) captured[h] = value.clone();
            return value;
        }

        for (var l = start; l <= lastLayer; l++)
        {
            var layer = l;
            x = RunBlock(layer, x, (site, value) => Visit(new HookPoint(site, layer), value));
        }
        if (!needFinal) return new ForwardResult(captured, null);
        var normalized = Visit(new HookPoint(HookSite.FinalNormalized, Layers), FinalNorm(x));
        return new ForwardResult(captured, request.Logits ? Unembed(normalized) : null);
    }

    public void Dispose()
    {
        foreach (var p in _parameters) p.Dispose();
        _parameters.Clear();
        GC.SuppressFinalize(this);
    }
}

/// <summary>What one forward pass computes.</summary>
public sealed record ForwardRequest
{
    /// <summary>Token ids [B, T]; needed unless <see cref="StartResidual"/> is given.</summary>
    public Tensor? Ids { get; init; }
    public IReadOnlyCollection<HookPoint> Capture { get; init; } = [];
    public IReadOnlyDictionary<HookPoint, IReadOnlyList<IIntervention>> Interventions { get; init; } = new Dictionary<HookPoint, IReadOnlyList<IIntervention>>();
    public bool Logits { get; init; }
    /// <summary>Run blocks from this layer on, starting from <see cref="StartResidual"/> (its resid_pre).</summary>
    public int StartLayer { get; init; }
    public Tensor? StartResidual { get; init; }
    /// <summary>
    /// Keys and values of earlier positions: <see cref="Ids"/> are then the next tokens only, positions,
    /// masks and position-limited interventions count from the cached length, and the cache grows by them.
    /// </summary>
    public KvCache? Cache { get; init; }
}

/// <summary>Captured hooks ([B, T, d], model dtype) and logits [B, T, V] when asked.</summary>
public sealed record ForwardResult(Dictionary<HookPoint, Tensor> Captured, Tensor? Logits);
