using System.Runtime.InteropServices;
using Stitching.Core.Errors;
using TorchSharp;
using static TorchSharp.torch;

namespace Stitching.Core.Tensors;

/// <summary>Copies between host tensors (bytes + dtype + shape) and torch tensors, dtype preserved.</summary>
public static class TorchTensors
{
    public static ScalarType ToScalarType(DType d) => d switch
    {
        DType.F32 => ScalarType.Float32, DType.F16 => ScalarType.Float16, DType.BF16 => ScalarType.BFloat16,
        DType.F64 => ScalarType.Float64, DType.I32 => ScalarType.Int32, DType.I64 => ScalarType.Int64,
        DType.U8 => ScalarType.Byte, DType.Bool => ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(d), d, "unknown dtype"),
    };

    public static DType ToDType(ScalarType s, string field = "tensor") => s switch
    {
        ScalarType.Float32 => DType.F32, ScalarType.Float16 => DType.F16, ScalarType.BFloat16 => DType.BF16,
        ScalarType.Float64 => DType.F64, ScalarType.Int32 => DType.I32, ScalarType.Int64 => DType.I64,
        ScalarType.Byte => DType.U8, ScalarType.Bool => DType.Bool,
        _ => throw StitchingException.InvalidArgument(field, $"torch dtype {s} has no wire dtype."),
    };

    /// <summary>A CPU torch tensor holding a copy of the host tensor's bytes.</summary>
    public static Tensor ToTorch(HostTensor t)
    {
        var result = empty(t.Shape, ToScalarType(t.DType));
        if (t.Data.Length > 0) result.bytes = MemoryMarshal.AsMemory(t.Data).Span;
        return result;
    }

    /// <summary>A host copy of a torch tensor (moved to the CPU, made contiguous).</summary>
    public static HostTensor ToHost(Tensor t, string name)
    {
        using var cpu = t.detach().cpu().contiguous();
        return new HostTensor(name, ToDType(cpu.dtype, name), cpu.shape, cpu.bytes.ToArray());
    }

    /// <summary>A float tensor from a host tensor of any float dtype, as float32 (or another float dtype).</summary>
    public static Tensor ToTorchFloat(HostTensor t, string field, ScalarType dtype = ScalarType.Float32)
    {
        if (t.DType is not (DType.F32 or DType.F16 or DType.BF16 or DType.F64))
            throw StitchingException.InvalidArgument(field, $"dtype {t.DType} is not a float type; send F32, F16, BF16 or F64.");
        var raw = ToTorch(t);
        return raw.dtype == dtype ? raw : raw.to(dtype);
    }
}
