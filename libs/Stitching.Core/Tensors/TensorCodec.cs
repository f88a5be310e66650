using Google.Protobuf;
using Stitching.Core.Errors;
using Proto = Stitching.Contracts.Common.V1;

namespace Stitching.Core.Tensors;

/// <summary>
/// Tensor &lt;-&gt; wire. Encoding wraps the host bytes without copying; decoding of a single message
/// aliases the message's buffer. Large tensors travel as a header followed by data chunks.
/// </summary>
public static class TensorCodec
{
    /// <summary>Default data chunk size on the wire: well under gRPC's default 4 MiB message limit.</summary>
    public const int DefaultChunkBytes = 1 << 20;

    public static Proto.DType ToProto(DType d) => d switch
    {
        DType.F32 => Proto.DType.F32, DType.F16 => Proto.DType.F16, DType.BF16 => Proto.DType.Bf16,
        DType.I32 => Proto.DType.I32, DType.I64 => Proto.DType.I64, DType.F64 => Proto.DType.F64,
        DType.U8 => Proto.DType.U8, DType.Bool => Proto.DType.Bool, _ => throw new ArgumentOutOfRangeException(nameof(d)),
    };

    public static DType FromProto(Proto.DType d, string field) => d switch
    {
        Proto.DType.F32 => DType.F32, Proto.DType.F16 => DType.F16, Proto.DType.Bf16 => DType.BF16,
        Proto.DType.I32 => DType.I32, Proto.DType.I64 => DType.I64, Proto.DType.F64 => DType.F64,
        Proto.DType.U8 => DType.U8, Proto.DType.Bool => DType.Bool,
        _ => throw StitchingException.InvalidArgument(field, $"dtype {d} is not supported; use one of F32, F16, BF16, I32, I64, F64, U8, BOOL."),
    };

    public static Proto.Tensor ToProto(HostTensor t)
    {
        var m = new Proto.Tensor { Name = t.Name, Dtype = ToProto(t.DType), Data = UnsafeByteOperations.UnsafeWrap(t.Data) };
        m.Shape.AddRange(t.Shape);
        return m;
    }

    /// <summary>A wire tensor as a host tensor; shape, dtype and byte count are checked and errors name <paramref name="field"/>.</summary>
    public static HostTensor FromProto(Proto.Tensor m, string field = "tensor") =>
        new(m.Name, FromProto(m.Dtype, field + ".dtype"), m.Shape.ToArray(), m.Data.Memory, field);

    public static Proto.TensorHeader Header(HostTensor t)
    {
        var h = new Proto.TensorHeader { Name = t.Name, Dtype = ToProto(t.DType), ByteLength = t.Data.Length };
        h.Shape.AddRange(t.Shape);
        return h;
    }

    /// <summary>Splits a tensor into a header chunk and data chunks of at most <paramref name="chunkBytes"/>.</summary>
    public static IEnumerable<Proto.TensorChunk> ToChunks(HostTensor t, int chunkBytes = DefaultChunkBytes)
    {
        if (chunkBytes <= 0) throw new ArgumentOutOfRangeException(nameof(chunkBytes));
        yield return new Proto.TensorChunk { Header = Header(t) };
        for (var offset = 0; offset < t.Data.Length; offset += chunkBytes)
        {
            var slice = t.Data.Slice(offset, Math.Min(chunkBytes, t.Data.Length - offset));
            yield return new Proto.TensorChunk { Data = UnsafeByteOperations.UnsafeWrap(slice) };
        }
    }
}
