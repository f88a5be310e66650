using static TorchSharp.torch;

namespace Stitching.Core.Metrics;

/// <summary>
/// How well a map reconstructs a target, the single definition (docs/metrics.md): target and
/// prediction are [n, d]; sums run over every token and dimension, in float64.
/// </summary>
public static class ReconstructionMetrics
{
    /// <summary>Mean squared error, mean over tokens and dimensions: sum (y - y_hat)^2 / (n d).</summary>
    public static double Mse(Tensor target, Tensor prediction)
    {
        using var scope = NewDisposeScope();
        return (target.to(ScalarType.Float64) - prediction.to(ScalarType.Float64)).square().mean().item<double>();
    }

    /// <summary>
    /// Fraction of variance unexplained: FVU = sum ||y - y_hat||^2 / sum ||y - mean(y)||^2, where mean(y)
    /// is the per-dimension mean over the n tokens. 0 is perfect; 1 is no better than predicting the mean.
    /// </summary>
    public static double Fvu(Tensor target, Tensor prediction)
    {
        using var scope = NewDisposeScope();
        var y = target.to(ScalarType.Float64);
        var residual = (y - prediction.to(ScalarType.Float64)).square().sum().item<double>();
        var total = (y - y.mean([0], keepdim: true)).square().sum().item<double>();
        return residual / total;
    }

    /// <summary>Explained variance = 1 - FVU.</summary>
    public static double ExplainedVariance(Tensor target, Tensor prediction) => 1 - Fvu(target, prediction);
}

/// <summary>
/// The reconstruction metrics of <see cref="ReconstructionMetrics"/> accumulated over batches (float64 sums),
/// so an evaluation never holds all its tokens: SSE = sum ||x - x_hat||^2, per-dimension sums of x and the
/// sum of x^2 (variance around the per-dimension mean over all tokens, not around zero), and the sum over
/// tokens of cos(x, x_hat). Torch thread for <see cref="Add"/>.
/// </summary>
public sealed class ReconstructionTally
{
    private double[]? _sumX;
    private double _sse, _sumSquares, _cosines;

    public long Tokens { get; private set; }

    public void Add(Tensor target, Tensor prediction)
    {
        using var scope = NewDisposeScope();
        var (y, p) = (target.to(ScalarType.Float64), prediction.to(ScalarType.Float64));
        var n = y.shape[0];
        if (n == 0) return;
        _sse += (y - p).pow(2).sum().item<double>();
        _sumSquares += y.pow(2).sum().item<double>();
        var sums = y.sum([0]).data<double>().ToArray();
        _sumX ??= new double[sums.Length];
        for (var j = 0; j < sums.Length; j++) _sumX[j] += sums[j];
        // cos(y, y_hat) per token; a zero vector against anything counts as 0
        var dot = (y * p).sum([1]);
        var norms = y.norm(1, keepdim: false) * p.norm(1, keepdim: false);
        _cosines += where(norms > 0, dot / where(norms > 0, norms, ones_like(norms)), zeros_like(norms)).sum().item<double>();
        Tokens += n;
    }

    /// <summary>sum (y - y_hat)^2 / (n d).</summary>
    public double Mse => _sse / (Tokens * (double)(_sumX?.Length ?? 1));

    /// <summary>SSE / sum_j (sum_t y_tj^2 - (sum_t y_tj)^2 / n): FVU with the variance around the mean.</summary>
    public double Fvu => _sse / (_sumSquares - (_sumX ?? []).Sum(s => s * s) / Tokens);

    public double ExplainedVariance => 1 - Fvu;

    /// <summary>Mean over tokens of cos(y_t, y_hat_t).</summary>
    public double Cosine => _cosines / Tokens;
}
