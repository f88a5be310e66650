using Stitching.Core.Stitches;
using Stitching.Core.Metrics;
using static TorchSharp.torch;

namespace Stitching.Stitch.Fitting;

/// <summary>
/// Held-out quality of a stitch (paper section 3, ours): FVU and MSE of each map and of both round
/// trips, on rows the fit never saw. Keys: fvu_up, fvu_down, fvu_up_down, fvu_down_up and mse_*.
/// </summary>
public static class HeldOutEvaluation
{
    public static Dictionary<string, double> Evaluate(AffineStitch stitch, Tensor a, Tensor b)
    {
        var result = new Dictionary<string, double>();
        if (a.shape[0] == 0) return result;
        using var scope = NewDisposeScope();
        var (ad, bd) = (a.to(ScalarType.Float64), b.to(ScalarType.Float64));
        foreach (var (name, direction, target, source) in new[]
        {
            ("up", StitchDirection.Up, bd, ad), ("down", StitchDirection.Down, ad, bd),
            ("up_down", StitchDirection.UpDown, ad, ad), ("down_up", StitchDirection.DownUp, bd, bd),
        })
        {
            var prediction = stitch.Apply(source, direction);
            result["fvu_" + name] = ReconstructionMetrics.Fvu(target, prediction);
            result["mse_" + name] = ReconstructionMetrics.Mse(target, prediction);
        }
        return result;
    }
}
