using Stitching.Core.Tensors;
using static TorchSharp.torch;

namespace Stitching.Benchmarks;

/// <summary>Copies torch tensors into host tensors for safetensors files.</summary>
public static class TorchHost
{
    /// <summary>A float32 or int64 torch tensor as a host tensor (copied to a contiguous CPU buffer).</summary>
    public static HostTensor ToHost(string name, Tensor t)
    {
        var dtype = t.dtype switch
        {
            ScalarType.Float32 => DType.F32,
            ScalarType.Int64 => DType.I64,
            var other => throw new ArgumentException($"{name}: {other} is neither float32 nor int64"),
        };
        using var c = t.cpu().contiguous();
        return new HostTensor(name, dtype, c.shape, c.bytes.ToArray());
    }
}
