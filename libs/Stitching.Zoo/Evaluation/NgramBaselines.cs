using Stitching.Zoo.Training;

namespace Stitching.Zoo.Evaluation;

/// <summary>
/// Count-based baselines scored on exactly the targets the models are scored on (every next token of
/// every held-out window): unigram and bigram with add-k smoothing,
/// P(b | a) = (c(a, b) + k) / (c(a) + k V), k chosen on the validation windows from a fixed grid.
/// </summary>
public sealed class NgramBaselines
{
    public static readonly double[] KGrid = [1e-4, 3e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 1];

    private readonly int _vocab;
    private readonly long[] _unigram;
    private readonly Dictionary<long, long> _bigram = [];
    private readonly long[] _context;
    private readonly long _total;

    /// <summary>Counts unigrams and bigrams over the training stream.</summary>
    public NgramBaselines(IReadOnlyList<int> train, int vocab)
    {
        _vocab = vocab;
        _unigram = new long[vocab];
        _context = new long[vocab];
        for (var i = 0; i < train.Count; i++)
        {
            _unigram[train[i]]++;
            if (i + 1 < train.Count)
            {
                _context[train[i]]++;
                var key = (long)train[i] * vocab + train[i + 1];
                _bigram[key] = _bigram.GetValueOrDefault(key) + 1;
            }
        }
        _total = train.Count;
    }

    /// <summary>Unigram cross-entropy (nats/token) with add-k smoothing.</summary>
    public double UnigramLoss(TokenWindows data, double k) =>
        Mean(data, (_, b) => -Math.Log((_unigram[b] + k) / (_total + k * _vocab)));

    /// <summary>Bigram cross-entropy (nats/token) with add-k smoothing.</summary>
    public double BigramLoss(TokenWindows data, double k) =>
        Mean(data, (a, b) => -Math.Log((_bigram.GetValueOrDefault((long)a * _vocab + b) + k) / (_context[a] + k * _vocab)));

    /// <summary>The grid k with the lowest loss on <paramref name="validation"/>.</summary>
    public static double BestK(Func<double, double> lossAtK) => KGrid.MinBy(lossAtK);

    private static double Mean(TokenWindows data, Func<int, int, double> nll)
    {
        double total = 0;
        long count = 0;
        for (var w = 0; w < data.Count; w++)
        {
            var window = data.Window(w);
            for (var t = 0; t < data.Context; t++) { total += nll(window[t], window[t + 1]); count++; }
        }
        return total / Math.Max(1, count);
    }
}
