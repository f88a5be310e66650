using Stitching.Core.Compute;
using TorchSharp;

namespace Stitching.Tests.Integration;

/// <summary>TorchSharp's native library loads from a plain build (the GLIBCXX patch did its work) and computes.</summary>
[Trait("Category", "Integration")]
public class TorchSharpTests
{
    [Fact]
    public async Task Torch_loads_and_a_matmul_matches_a_direct_computation()
    {
        using var worker = new TorchWorker();
        var (result, a, b) = await worker.RunAsync(() =>
        {
            var ta = torch.randn(17, 33, generator: new torch.Generator(1));
            var tb = torch.randn(33, 9, generator: new torch.Generator(2));
            var tc = torch.matmul(ta, tb);
            return (tc.data<float>().ToArray(), ta.data<float>().ToArray(), tb.data<float>().ToArray());
        });
        for (var i = 0; i < 17; i++)
            for (var j = 0; j < 9; j++)
            {
                double s = 0;
                for (var k = 0; k < 33; k++) s += (double)a[i * 33 + k] * b[k * 9 + j];
                Assert.True(Math.Abs(s - result[i * 9 + j]) <= 1e-5 * (1 + Math.Abs(s)), $"c[{i},{j}] = {result[i * 9 + j]}, direct sum {s}");
            }
        Assert.StartsWith("2.", TorchInfo.Version);
    }
}
