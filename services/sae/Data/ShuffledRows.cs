namespace Stitching.Sae.Data;

/// <summary>
/// A resumable shuffling buffer. Shards are taken <c>windowShards</c> at a time (window w holds shards
/// w*S .. w*S+S-1, modulo the shard count, so passes repeat in order) and the window's rows are emitted in
/// a permutation drawn from a generator seeded by (seed, w). The position (window, offset) is therefore the
/// whole state: restoring it reproduces the same batches, with no buffer or rng bytes to save.
/// </summary>
public sealed class ShuffledRows(IShardSource source, int windowShards, ulong seed)
{
    private float[] _rows = [];
    private int[] _order = [];
    private long _loadedWindow = -1;

    public long Window { get; private set; }
    public long Offset { get; private set; }
    public int Width => source.Width;

    /// <summary>Moves to a saved position (the next batch starts there).</summary>
    public void Seek(long window, long offset) => (Window, Offset) = (window, offset);

    /// <summary>The next <paramref name="count"/> rows, row-major [count, width].</summary>
    public async Task<float[]> NextAsync(int count, CancellationToken ct)
    {
        var d = source.Width;
        var batch = new float[count * d];
        for (var filled = 0; filled < count;)
        {
            await EnsureWindowAsync(ct);
            if (Offset >= _order.Length) { Window++; Offset = 0; continue; }
            var take = (int)Math.Min(count - filled, _order.Length - Offset);
            for (var i = 0; i < take; i++)
                Array.Copy(_rows, (long)_order[Offset + i] * d, batch, (long)(filled + i) * d, d);
            filled += take;
            Offset += take;
        }
        return batch;
    }

    /// <summary>
    /// Statistics of the current window's rows: the per-dimension mean (b_dec's initial value) and the mean
    /// squared norm E||x||^2 (the input scaling factor's estimate).
    /// </summary>
    public async Task<(float[] Mean, double MeanSquaredNorm)> WindowStatsAsync(CancellationToken ct)
    {
        await EnsureWindowAsync(ct);
        var d = source.Width;
        var sum = new double[d];
        var squares = 0.0;
        var n = _rows.Length / d;
        for (var r = 0; r < n; r++)
            for (var j = 0; j < d; j++)
            {
                double v = _rows[r * d + j];
                sum[j] += v;
                squares += v * v;
            }
        return (sum.Select(s => (float)(s / Math.Max(1, n))).ToArray(), squares / Math.Max(1, n));
    }

    private async Task EnsureWindowAsync(CancellationToken ct)
    {
        if (_loadedWindow == Window) return;
        var parts = new List<float[]>();
        for (var i = 0; i < windowShards; i++)
        {
            var shard = (int)((Window * windowShards + i) % source.Shards);
            parts.Add((await source.LoadAsync(shard, ct)).Values);
        }
        _rows = parts.SelectMany(p => p).ToArray();
        var n = _rows.Length / source.Width;
        if (n == 0) throw Core.Errors.StitchingException.FailedPrecondition("the activation set has no usable rows (all special?); extract more text or set include_special.", "activation_set");
        _order = Permutation(n, seed, Window);
        _loadedWindow = Window;
    }

    /// <summary>Fisher-Yates with SplitMix64 seeded by (seed, window): stable across runtimes and versions.</summary>
    public static int[] Permutation(int n, ulong seed, long window)
    {
        var order = Enumerable.Range(0, n).ToArray();
        var state = seed ^ (0x9E3779B97F4A7C15UL * (ulong)(window + 1));
        for (var i = n - 1; i > 0; i--)
        {
            var j = (int)(SplitMix64.Next(ref state) % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        return order;
    }
}
