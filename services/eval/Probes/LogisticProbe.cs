using Stitching.Core.Errors;
using static TorchSharp.torch;

namespace Stitching.Eval.Probes;

/// <summary>
/// A binary logistic probe on standardized features: logit(x) = ((x - mu) / sigma) w + c, class 1 when the
/// logit is positive. mu and sigma (population std; 1 where a feature is constant) come from the training
/// examples and are part of the probe, so reusing it elsewhere ("no retrain") reuses them too.
/// Arrays are float64, host side; fitting runs on the torch thread.
/// </summary>
public sealed record LogisticProbe(double[] Mean, double[] Scale, double[] Weights, double Bias, double L2)
{
    public int Features => Weights.Length;

    /// <summary>The logit of each row of <paramref name="x"/> [n, Features].</summary>
    public double[] Logits(double[][] x)
    {
        var logits = new double[x.Length];
        for (var i = 0; i < x.Length; i++)
        {
            if (x[i].Length != Features) throw new ArgumentException($"row {i} has {x[i].Length} features; the probe reads {Features}.");
            var s = Bias;
            for (var j = 0; j < Features; j++) s += (x[i][j] - Mean[j]) / Scale[j] * Weights[j];
            logits[i] = s;
        }
        return logits;
    }

    /// <summary>Correct predictions on (x, y) with y in {0, 1}.</summary>
    public long Correct(double[][] x, int[] y)
    {
        var logits = Logits(x);
        long correct = 0;
        for (var i = 0; i < y.Length; i++) if (logits[i] > 0 == (y[i] == 1)) correct++;
        return correct;
    }

    /// <summary>
    /// Minimises mean_i log(1 + exp(-s_i logit_i)) + (l2 / 2) |w|^2 (s_i = 2 y_i - 1; the bias is not
    /// penalised) by Newton's method with step halving, in float64, until the largest step is below 1e-9 or
    /// 100 iterations. The objective is strictly convex for l2 > 0, so the minimiser is unique.
    /// </summary>
    public static LogisticProbe Fit(double[][] x, int[] y, double l2)
    {
        if (x.Length == 0 || x.Length != y.Length) throw new ArgumentException("give as many labels as rows, at least one.");
        if (!(l2 > 0)) throw StitchingException.InvalidArgument("l2", $"{l2} must be > 0.");
        var p = x[0].Length;
        var (mean, scale) = Standardizer(x);
        using var scope = NewDisposeScope();
        var z = Standardized(x, mean, scale);                                    // [n, p + 1], last column ones
        var t = tensor(y.Select(v => (double)v).ToArray(), dtype: ScalarType.Float64);
        var n = (double)x.Length;
        var penalty = cat([full(p, l2, dtype: ScalarType.Float64), zeros(1, dtype: ScalarType.Float64)]);
        var w = zeros(p + 1, dtype: ScalarType.Float64);
        double Objective(Tensor v) =>
            (nn.functional.softplus(z.matmul(v)) - t * z.matmul(v)).mean().item<double>() + 0.5 * (penalty * v * v).sum().item<double>();
        var current = Objective(w);
        for (var iter = 0; iter < 100; iter++)
        {
            var prob = z.matmul(w).sigmoid();
            var grad = z.t().matmul(prob - t) / n + penalty * w;
            var weights = prob * (1 - prob);
            var hessian = (z.t() * weights).matmul(z) / n + diag(penalty + 1e-12);
            var step = linalg.solve(hessian, grad);
            var size = 1.0;
            Tensor next = w;
            var value = current;
            for (var halvings = 0; halvings < 40; halvings++, size /= 2)
            {
                next = w - step * size;
                value = Objective(next);
                if (value <= current + 1e-15) break;
            }
            var moved = (step * size).abs().max().item<double>();
            w = next;
            current = value;
            if (moved < 1e-9) break;
        }
        var all = w.data<double>().ToArray();
        return new LogisticProbe(mean, scale, all[..p], all[p], l2);
    }

    /// <summary>
    /// Fits one probe per strength on the training split and keeps the one with the best validation
    /// accuracy (ties: the larger strength, the simpler probe).
    /// </summary>
    public static LogisticProbe FitSelected(double[][] train, int[] trainY, double[][] validation, int[] validationY, IReadOnlyList<double> strengths)
    {
        LogisticProbe? best = null;
        long bestCorrect = -1;
        foreach (var l2 in strengths.OrderByDescending(s => s))
        {
            var probe = Fit(train, trainY, l2);
            var correct = probe.Correct(validation, validationY);
            if (correct > bestCorrect) (best, bestCorrect) = (probe, correct);
        }
        return best!;
    }

    private static (double[] Mean, double[] Scale) Standardizer(double[][] x)
    {
        var p = x[0].Length;
        var mean = new double[p];
        var scale = new double[p];
        foreach (var row in x) for (var j = 0; j < p; j++) mean[j] += row[j];
        for (var j = 0; j < p; j++) mean[j] /= x.Length;
        foreach (var row in x) for (var j = 0; j < p; j++) scale[j] += (row[j] - mean[j]) * (row[j] - mean[j]);
        for (var j = 0; j < p; j++)
        {
            var sd = Math.Sqrt(scale[j] / x.Length);
            scale[j] = sd > 1e-12 ? sd : 1;
        }
        return (mean, scale);
    }

    private static Tensor Standardized(double[][] x, double[] mean, double[] scale)
    {
        var p = mean.Length;
        var flat = new double[x.Length * (p + 1)];
        for (var i = 0; i < x.Length; i++)
        {
            for (var j = 0; j < p; j++) flat[i * (p + 1) + j] = (x[i][j] - mean[j]) / scale[j];
            flat[i * (p + 1) + p] = 1;
        }
        return tensor(flat, [x.Length, p + 1], dtype: ScalarType.Float64);
    }
}
