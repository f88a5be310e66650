namespace Stitching.Core.Tensors;

/// <summary>Element types we store and send. Bytes are little-endian, row-major.</summary>
public enum DType { F32, F16, BF16, I32, I64, F64, U8, Bool }

public static class DTypes
{
    public static int ElementSize(this DType d) => d switch
    {
        DType.F32 or DType.I32 => 4,
        DType.F16 or DType.BF16 => 2,
        DType.I64 or DType.F64 => 8,
        DType.U8 or DType.Bool => 1,
        _ => throw new ArgumentOutOfRangeException(nameof(d), d, "unknown dtype"),
    };

    /// <summary>The dtype's name in the safetensors header.</summary>
    public static string SafetensorsName(this DType d) => d switch
    {
        DType.F32 => "F32", DType.F16 => "F16", DType.BF16 => "BF16", DType.I32 => "I32",
        DType.I64 => "I64", DType.F64 => "F64", DType.U8 => "U8", DType.Bool => "BOOL",
        _ => throw new ArgumentOutOfRangeException(nameof(d), d, "unknown dtype"),
    };

    public static bool TryParseSafetensors(string name, out DType dtype)
    {
        switch (name)
        {
            case "F32": dtype = DType.F32; return true;
            case "F16": dtype = DType.F16; return true;
            case "BF16": dtype = DType.BF16; return true;
            case "I32": dtype = DType.I32; return true;
            case "I64": dtype = DType.I64; return true;
            case "F64": dtype = DType.F64; return true;
            case "U8": dtype = DType.U8; return true;
            case "BOOL": dtype = DType.Bool; return true;
            default: dtype = default; return false;
        }
    }
}
