using System.Globalization;
using Stitching.Core.Metrics;
using Stitching.Tests.Fixtures;
using static TorchSharp.torch;

namespace Stitching.Tests.Sae;

/// <summary>FVU, explained variance, L0 and dead fraction against numpy computations of their written definitions.</summary>
[Trait("Category", "Unit")]
public class SaeMetricsTests
{
    [Fact]
    public void Fvu_and_l0_follow_their_definitions_as_numpy_computes_them()
    {
        var g = new Generator(11);
        var x = randn(37, 6, generator: g) * 2 + 1;
        var xHat = x + randn(37, 6, generator: g) * 0.5;
        var latents = nn.functional.relu(randn(37, 20, generator: g) - 1);
        var script = """
            import sys, numpy as np
            x = np.array([float(v) for v in sys.argv[1].split(',')]).reshape(37, 6)
            xh = np.array([float(v) for v in sys.argv[2].split(',')]).reshape(37, 6)
            f = np.array([float(v) for v in sys.argv[3].split(',')]).reshape(37, 20)
            fvu = ((x - xh) ** 2).sum() / ((x - x.mean(axis=0)) ** 2).sum()
            print(repr(fvu), repr(((x - xh) ** 2).mean()), repr((f != 0).sum(axis=1).mean()))
            """;
        var output = Python.Run(script, Csv(x), Csv(xHat), Csv(latents)).Split(' ', StringSplitOptions.TrimEntries).Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray();

        Assert.Equal(output[0], ReconstructionMetrics.Fvu(x, xHat), 6);
        Assert.Equal(1 - output[0], ReconstructionMetrics.ExplainedVariance(x, xHat), 6);
        Assert.Equal(output[1], ReconstructionMetrics.Mse(x, xHat), 6);
        Assert.Equal(output[2], SparsityMetrics.L0(latents), 9);
        Assert.InRange(output[0], 0.01, 0.5);
    }

    [Fact]
    public void Dead_fraction_counts_latents_silent_for_the_window()
    {
        var since = tensor(new long[] { 0, 5, 10, 11, 100 });
        Assert.Equal(3 / 5.0, SparsityMetrics.DeadFraction(since, 10), 12);
        Assert.Equal(1 / 5.0, SparsityMetrics.DeadFraction(since, 100), 12);
    }

    private static string Csv(Tensor t) => string.Join(",", SaeFixtures.Floats(t).Select(v => v.ToString("R", CultureInfo.InvariantCulture)));
}
