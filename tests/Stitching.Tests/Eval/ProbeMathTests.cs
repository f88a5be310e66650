using System.Text.Json;
using Stitching.Core.Metrics;
using Stitching.Core.Text;
using Stitching.Eval.Probes;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Eval;

/// <summary>Probe math against independent computations: numpy's logistic optimum and gradient, exact binomial intervals in Python.</summary>
public class ProbeMathTests
{
    private const string NumpyLogistic = """
import json, sys
import numpy as np
d = json.load(open(sys.argv[1]))
x, y, l2 = np.array(d['x']), np.array(d['y'], dtype=float), d['l2']
mu = x.mean(0); sd = x.std(0); sd[sd <= 1e-12] = 1
z = np.hstack([(x - mu) / sd, np.ones((len(x), 1))])
pen = np.r_[np.full(x.shape[1], l2), 0.0]
def grad(v):
    p = 1 / (1 + np.exp(-z @ v))
    return z.T @ (p - y) / len(y) + pen * v
v = np.r_[d['w'], d['b']]
# the minimiser by plain gradient descent from zero (a different method), for comparison
u = np.zeros(z.shape[1])
for _ in range(200000):
    g = grad(u)
    if np.abs(g).max() < 1e-12: break
    u -= 1.0 * g
print(json.dumps({'grad': float(np.abs(grad(v)).max()), 'mu': mu.tolist(), 'sd': sd.tolist(), 'gd': u.tolist()}))
""";

    [Fact]
    public void Logistic_probe_is_the_penalised_optimum_numpy_finds()
    {
        var rng = new Random(7);
        const int n = 300, p = 4;
        var x = Enumerable.Range(0, n).Select(_ => Enumerable.Range(0, p).Select(j => rng.NextDouble() * (j + 1) + (j == 3 ? 5 : 0)).ToArray()).ToArray();
        var y = x.Select(r => r[0] - 0.5 * r[1] + 0.3 * rng.NextDouble() > 0.1 ? 1 : 0).ToArray();
        var probe = LogisticProbe.Fit(x, y, 0.01);
        using var dir = new TempDir("probe-math");
        var path = Path.Combine(dir.Path, "d.json");
        File.WriteAllText(path, JsonSerializer.Serialize(new { x, y, l2 = 0.01, w = probe.Weights, b = probe.Bias }));
        using var json = JsonDocument.Parse(Python.Run(NumpyLogistic, path));
        Assert.True(json.RootElement.GetProperty("grad").GetDouble() < 1e-8, $"gradient at the fitted probe {json.RootElement.GetProperty("grad").GetDouble()}");
        var mu = json.RootElement.GetProperty("mu").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var sd = json.RootElement.GetProperty("sd").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        var gd = json.RootElement.GetProperty("gd").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (var j = 0; j < p; j++)
        {
            Assert.Equal(mu[j], probe.Mean[j], 10);
            Assert.Equal(sd[j], probe.Scale[j], 10);
            Assert.Equal(gd[j], probe.Weights[j], 6);
        }
        Assert.Equal(gd[p], probe.Bias, 6);
        // predictions follow the logit's sign, computed here from the weights
        var logits = x.Select(r => Enumerable.Range(0, p).Sum(j => (r[j] - mu[j]) / sd[j] * probe.Weights[j]) + probe.Bias).ToArray();
        Assert.Equal(logits.Zip(y).Count(t => t.First > 0 == (t.Second == 1)), probe.Correct(x, y));
    }

    [Fact]
    public void Strength_is_chosen_on_validation_and_a_constant_feature_is_harmless()
    {
        var rng = new Random(3);
        double[][] Rows(int n) => Enumerable.Range(0, n).Select(_ => new[] { rng.NextDouble(), 1.0, rng.NextDouble() }).ToArray();
        var (train, val) = (Rows(200), Rows(200));
        int[] Labels(double[][] x) => x.Select(r => r[0] > 0.5 ? 1 : 0).ToArray();
        var strengths = new[] { 1e-4, 1.0, 100.0 };
        var chosen = LogisticProbe.FitSelected(train, Labels(train), val, Labels(val), strengths);
        var best = strengths.Select(l => LogisticProbe.Fit(train, Labels(train), l)).Select(pr => pr.Correct(val, Labels(val))).Max();
        Assert.Equal(best, chosen.Correct(val, Labels(val)));
        Assert.Equal(1.0, chosen.Scale[1]); // the constant column is not divided by zero
        Assert.True(chosen.Correct(val, Labels(val)) > 180);
    }

    private const string ExactIntervals = """
import json, sys, math
def tail_ge(k, n, p): return sum(math.comb(n, i) * p**i * (1-p)**(n-i) for i in range(k, n + 1))
def tail_le(k, n, p): return sum(math.comb(n, i) * p**i * (1-p)**(n-i) for i in range(0, k + 1))
def solve(f, rising):
    lo, hi = 0.0, 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if (f(mid) > 0) == rising: hi = mid
        else: lo = mid
    return (lo + hi) / 2
z = 1.959963984540054
out = []
for k, n in json.loads(sys.argv[1]):
    low = 0.0 if k == 0 else solve(lambda p: tail_ge(k, n, p) - 0.025, True)
    high = 1.0 if k == n else solve(lambda p: tail_le(k, n, p) - 0.025, False)
    ph = k / n
    c = (ph + z*z/(2*n)) / (1 + z*z/n); h = z * math.sqrt(ph*(1-ph)/n + z*z/(4*n*n)) / (1 + z*z/n)
    out.append([low, high, max(0, c - h), min(1, c + h)])
print(json.dumps(out))
""";

    [Fact]
    public void Wilson_and_clopper_pearson_match_exact_binomial_computations()
    {
        var cases = new[] { (0, 10), (3, 10), (10, 10), (17, 40), (81, 163), (150, 163), (1, 1) };
        using var json = JsonDocument.Parse(Python.Run(ExactIntervals, JsonSerializer.Serialize(cases.Select(c => new[] { c.Item1, c.Item2 }))));
        var rows = json.RootElement.EnumerateArray().ToArray();
        for (var i = 0; i < cases.Length; i++)
        {
            var (k, n) = cases[i];
            var e = rows[i].EnumerateArray().Select(v => v.GetDouble()).ToArray();
            var cp = Intervals.ClopperPearson(k, n);
            var w = Intervals.Wilson(k, n);
            Assert.Equal(e[0], cp.Low, 9);
            Assert.Equal(e[1], cp.High, 9);
            Assert.Equal(e[2], w.Low, 12);
            Assert.Equal(e[3], w.High, 12);
        }
        Assert.Equal((0.0, 0.0), Intervals.Wilson(0, 0));
    }

    [Fact]
    public void Span_labels_take_the_span_of_a_tokens_first_non_space_character()
    {
        const string text = "The cat, sat.";
        // words: The [0,3) cat [4,7) , [7,8) sat [9,12) . [12,13)
        var spans = new[] { new LabelledSpan(0, 3, 5), new LabelledSpan(4, 7, 0), new LabelledSpan(7, 8, 10), new LabelledSpan(9, 12, 1), new LabelledSpan(12, 13, 10) };
        // tokens: "The", " cat", ",", " ", "sat", "."  and one that starts inside "cat"
        var offsets = new[] { (0, 3), (3, 7), (7, 8), (8, 9), (9, 12), (12, 13), (5, 7) };
        Assert.Equal(new[] { 5, 0, 10, -1, 1, 10, 0 }, SpanLabels.Assign(text, offsets, spans));
        Assert.Equal(-1, SpanLabels.Overlap(spans));
        Assert.Equal(1, SpanLabels.Overlap([new LabelledSpan(0, 5, 1), new LabelledSpan(3, 6, 2)]));
    }

    [Fact]
    public void Ranking_orders_latents_by_the_class_difference_of_mean_activation()
    {
        var rows = new List<ProbeEvaluator.SparseRow>
        {
            new([0, 2], [1f, 4f]), new([2], [2f]), // positives: latent 0 mean 0.5, latent 2 mean 3
            new([1, 2], [3f, 1f]), new([0], [1f]), // negatives: latent 0 mean 0.5, latent 1 mean 1.5, latent 2 mean 0.5
        };
        var order = ProbeEvaluator.Rank(rows, [1, 1, 0, 0], 4);
        Assert.Equal(new[] { 2, 1, 0, 3 }, order); // |3 - 0.5| = 2.5, |0 - 1.5| = 1.5, then the ties 0 and 3 by index
    }
}
