using System.Diagnostics;
using TorchSharp;

namespace Stitching.Core.Compute;

/// <summary>This machine's float32 matmul rate through TorchSharp: the roofline other benchmarks compare against.</summary>
public static class MatmulRate
{
    /// <summary>
    /// Best wall time of <paramref name="repeat"/> n x n by n x n float32 matmuls on <paramref name="device"/>,
    /// after one warm-up, on the calling thread at torch's current thread count.
    /// </summary>
    public static double BestSeconds(int n, int repeat, torch.Device device)
    {
        using var scope = torch.NewDisposeScope();
        var a = torch.randn(n, n, device: device);
        var b = torch.randn(n, n, device: device);
        torch.matmul(a, b).Dispose();
        var best = double.MaxValue;
        for (var i = 0; i < Math.Max(1, repeat); i++)
        {
            var sw = Stopwatch.StartNew();
            using var c = torch.matmul(a, b);
            if (device.type == DeviceType.CUDA) torch.cuda.synchronize();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return best;
    }

    /// <summary>GFLOP/s of the best n x n matmul (see <see cref="BestSeconds"/>).</summary>
    public static double Gflops(int n, double seconds) => Flops.Matmul(n, n, n) / seconds / 1e9;
}
