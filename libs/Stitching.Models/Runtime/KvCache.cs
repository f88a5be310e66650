using static TorchSharp.torch;

namespace Stitching.Models.Runtime;

/// <summary>
/// Keys and values of every attention layer for the positions already run, so a generation step runs only
/// its new tokens (O(T) per step instead of O(T^2)). Each layer holds K and V [B, KV heads, Length, head_dim]
/// after rotary positions, owned by the cache (detached from dispose scopes) until <see cref="Dispose"/>.
/// A forward with a cache sees positions Length..Length+t-1; <see cref="CausalLm.Forward"/> advances
/// <see cref="Length"/> when it completes. Torch thread only.
/// </summary>
public sealed class KvCache(int layers) : IDisposable
{
    private readonly (Tensor K, Tensor V)?[] _layers = new (Tensor K, Tensor V)?[layers];

    /// <summary>Positions cached so far (the offset of the next forward's first token).</summary>
    public int Length { get; private set; }

    /// <summary>Appends a layer's new keys and values and returns the full ones (cached and new).</summary>
    public (Tensor K, Tensor V) Append(int layer, Tensor k, Tensor v)
    {
        var previous = _layers[layer];
        var (fullK, fullV) = previous is { } p ? (cat([p.K, k], 2), cat([p.V, v], 2)) : (k.clone(), v.clone());
        fullK.DetachFromDisposeScope();
        fullV.DetachFromDisposeScope();
        if (previous is { } old) { old.K.Dispose(); old.V.Dispose(); }
        _layers[layer] = (fullK, fullV);
        return (fullK, fullV);
    }

    internal void Advance(int tokens) => Length += tokens;

    public void Dispose()
    {
        for (var l = 0; l < _layers.Length; l++)
            if (_layers[l] is { } p) { p.K.Dispose(); p.V.Dispose(); _layers[l] = null; }
    }
}

/// <summary>What one layer's attention needs of the cache: the position offset and where to append its keys and values.</summary>
public readonly record struct AttentionStep(int Offset, KvCache? Cache, int Layer)
{
    /// <summary>Keys and values to attend over: the cached ones followed by these (or these alone without a cache).</summary>
    public (Tensor K, Tensor V) Extend(Tensor k, Tensor v) => Cache is null ? (k, v) : Cache.Append(Layer, k, v);
}
