using Stitching.Core.Errors;
using Proto = Stitching.Contracts.Common.V1;

namespace Stitching.Core.Tensors;

/// <summary>
/// Reassembles a TensorChunk stream (header, data..., header, data...) into tensors, checking that
/// every tensor receives exactly the bytes its header announced.
/// </summary>
public sealed class TensorAssembler(long maxTensorBytes = long.MaxValue)
{
    private Proto.TensorHeader? _header;
    private DType _dtype;
    private byte[]? _buffer;
    private long _filled;

    /// <summary>Feeds one chunk; returns a tensor when this chunk completed one.</summary>
    public HostTensor? Add(Proto.TensorChunk chunk)
    {
        switch (chunk.PartCase)
        {
            case Proto.TensorChunk.PartOneofCase.Header:
                EnsureIdle("a new header arrived");
                var h = chunk.Header;
                _dtype = TensorCodec.FromProto(h.Dtype, "header.dtype");
                var expected = HostTensor.ByteLength(_dtype, h.Shape, "header.shape");
                if (h.ByteLength != expected)
                    throw StitchingException.InvalidArgument("header.byte_length",
                        $"is {h.ByteLength} for tensor '{h.Name}' but dtype {_dtype} with shape [{string.Join(", ", h.Shape)}] needs {expected}.");
                if (expected > maxTensorBytes)
                    throw StitchingException.ResourceExhausted($"tensor '{h.Name}' has {expected} bytes, over this server's limit of {maxTensorBytes}; split it into several tensors.", "header.byte_length");
                if (expected > Array.MaxLength)
                    throw StitchingException.ResourceExhausted($"tensor '{h.Name}' has {expected} bytes, over the 2 GiB a single tensor may have here; split it along its first dimension.", "header.byte_length");
                _header = h;
                _buffer = new byte[expected];
                _filled = 0;
                return expected == 0 ? Complete() : null;
            case Proto.TensorChunk.PartOneofCase.Data:
                if (_header is null || _buffer is null)
                    throw StitchingException.InvalidArgument("chunk.data", "arrived before any header; send a TensorHeader first.");
                var data = chunk.Data.Span;
                if (_filled + data.Length > _buffer.Length)
                    throw StitchingException.InvalidArgument("chunk.data",
                        $"tensor '{_header.Name}' received more than the {_buffer.Length} bytes its header announced.");
                data.CopyTo(_buffer.AsSpan((int)_filled));
                _filled += data.Length;
                return _filled == _buffer.Length ? Complete() : null;
            default:
                throw StitchingException.InvalidArgument("chunk", "is empty; set either header or data.");
        }
    }

    /// <summary>Call at end of stream: fails when a tensor is still missing bytes.</summary>
    public void Finish() => EnsureIdle("the stream ended");

    private HostTensor Complete()
    {
        var t = new HostTensor(_header!.Name, _dtype, _header.Shape.ToArray(), _buffer!);
        _header = null;
        _buffer = null;
        return t;
    }

    private void EnsureIdle(string when)
    {
        if (_header is not null)
            throw StitchingException.InvalidArgument("chunk.data",
                $"{when} while tensor '{_header.Name}' had {_filled} of {_buffer!.Length} bytes; send all of a tensor's bytes after its header.");
    }
}
