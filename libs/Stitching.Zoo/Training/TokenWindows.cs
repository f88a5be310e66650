using static TorchSharp.torch;

namespace Stitching.Zoo.Training;

/// <summary>
/// A token stream (documents joined by end-of-text) cut into non-overlapping windows of context + 1
/// tokens: the model reads the first context tokens and predicts the next one at every position.
/// Training draws windows in a seeded permutation, epoch after epoch, so every size of a family sees
/// the same tokens in the same order.
/// </summary>
public sealed class TokenWindows
{
    private readonly int[] _tokens;

    public TokenWindows(int[] tokens, int context)
    {
        _tokens = tokens;
        Context = context;
        Count = Math.Max(0, (tokens.Length - 1) / context);
    }

    public int Context { get; }
    public int Count { get; }
    public long Tokens => _tokens.Length;

    /// <summary>Window i as context + 1 ids (windows overlap by one token so every token is predicted once).</summary>
    public ReadOnlySpan<int> Window(int i) => _tokens.AsSpan(i * Context, Context + 1);

    /// <summary>The window order of a training run: a fresh seeded shuffle per epoch, concatenated.</summary>
    public IEnumerable<int> Order(int seed)
    {
        for (var epoch = 0; ; epoch++)
        {
            var order = Enumerable.Range(0, Count).ToArray();
            new Random(unchecked(seed * 7919 + epoch)).Shuffle(order);
            foreach (var i in order) yield return i;
        }
    }

    /// <summary>Inputs [B, context] and targets [B, context] for the listed windows.</summary>
    public (Tensor Inputs, Tensor Targets) Batch(IReadOnlyList<int> windows)
    {
        var ids = new long[windows.Count * (Context + 1)];
        for (var b = 0; b < windows.Count; b++)
        {
            var w = Window(windows[b]);
            for (var t = 0; t <= Context; t++) ids[b * (Context + 1) + t] = w[t];
        }
        var all = tensor(ids).view(windows.Count, Context + 1);
        return (all[.., ..Context], all[.., 1..]);
    }
}
