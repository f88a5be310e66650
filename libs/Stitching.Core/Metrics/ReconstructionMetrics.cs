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
