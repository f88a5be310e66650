using Stitching.Core.Errors;

namespace Stitching.Core.Tensors;

/// <summary>A named tensor held as raw little-endian bytes in host memory (no torch involved).</summary>
public sealed class HostTensor
{
    public HostTensor(string name, DType dtype, long[] shape, ReadOnlyMemory<byte> data)
    {
        var expected = ByteLength(dtype, shape);
        if (data.Length != expected)
            throw StitchingException.InvalidArgument($"tensor '{name}'.data",
                $"holds {data.Length} bytes but dtype {dtype} with shape [{string.Join(", ", shape)}] needs {expected}; send exactly product(shape) * element size bytes.");
        Name = name;
        DType = dtype;
        Shape = shape;
        Data = data;
    }

    public string Name { get; }
    public DType DType { get; }
    public long[] Shape { get; }
    public ReadOnlyMemory<byte> Data { get; }
    public long ElementCount => Numel(Shape);

    public static long Numel(IReadOnlyList<long> shape)
    {
        long n = 1;
        foreach (var s in shape)
        {
            if (s < 0) throw StitchingException.InvalidArgument("shape", $"has a negative dimension ({s}); dimensions must be >= 0.");
            n = checked(n * s);
        }
        return n;
    }

    public static long ByteLength(DType dtype, IReadOnlyList<long> shape) => checked(Numel(shape) * dtype.ElementSize());

    public static HostTensor FromFloats(string name, float[] values, params long[] shape)
    {
        var bytes = new byte[values.Length * sizeof(float)];
        Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
        return new HostTensor(name, DType.F32, shape, bytes);
    }

    public float[] ToFloats()
    {
        if (DType != DType.F32) throw new InvalidOperationException($"tensor '{Name}' is {DType}, not F32");
        return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(Data.Span).ToArray();
    }
}
