using Stitching.Core.Errors;

namespace Stitching.Core.Tensors;

/// <summary>A named tensor held as raw little-endian bytes in host memory (no torch involved).</summary>
public sealed class HostTensor
{
    public HostTensor(string name, DType dtype, long[] shape, ReadOnlyMemory<byte> data, string? field = null)
    {
        var expected = ByteLength(dtype, shape, field ?? $"tensor '{name}'.shape");
        if (data.Length != expected)
            throw StitchingException.InvalidArgument(field ?? $"tensor '{name}'.data",
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

    public static long Numel(IReadOnlyList<long> shape, string field = "shape")
    {
        long n = 1;
        foreach (var s in shape)
        {
            if (s < 0) throw StitchingException.InvalidArgument(field, $"shape [{string.Join(", ", shape)}] has a negative dimension; dimensions must be >= 0.");
            try { n = checked(n * s); }
            catch (OverflowException) { throw StitchingException.InvalidArgument(field, $"shape [{string.Join(", ", shape)}] has more elements than a 64-bit count holds."); }
        }
        return n;
    }

    public static long ByteLength(DType dtype, IReadOnlyList<long> shape, string field = "shape")
    {
        var n = Numel(shape, field);
        try { return checked(n * dtype.ElementSize()); }
        catch (OverflowException) { throw StitchingException.InvalidArgument(field, $"shape [{string.Join(", ", shape)}] of {dtype} has more bytes than a 64-bit count holds."); }
    }

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

    /// <summary>Token ids as int32: I32 as is, I64 narrowed (INVALID_ARGUMENT naming <paramref name="field"/> for other dtypes or values outside int32).</summary>
    public int[] ToInts(string field)
    {
        switch (DType)
        {
            case DType.I32: return System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(Data.Span).ToArray();
            case DType.I64:
                var wide = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(Data.Span);
                var ints = new int[wide.Length];
                for (var i = 0; i < wide.Length; i++)
                    ints[i] = wide[i] is >= int.MinValue and <= int.MaxValue ? (int)wide[i]
                        : throw Errors.StitchingException.InvalidArgument(field, $"value {wide[i]} at index {i} is outside the int32 range of token ids.");
                return ints;
            default: throw Errors.StitchingException.InvalidArgument(field, $"dtype {DType} must be I32 or I64.");
        }
    }
}
