using System.Runtime.InteropServices;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;

namespace Stitching.Stitch.Data;

/// <summary>
/// Rows of one [n, d] float tensor in a safetensors file (a "tensors" artifact a client uploaded), read
/// in row ranges so a file larger than memory streams. Each token counts as its own row for the
/// held-out split; there are no token ids or special flags.
/// </summary>
public sealed class TensorFileSource : IRowSource, IDisposable
{
    public const string Kind = "tensors";
    private const int BlockRows = 16384;
    private readonly SafetensorsReader _reader;
    private readonly SafetensorsEntry _entry;
    private long _next;

    public TensorFileSource(SafetensorsReader reader, string tensor, string field)
    {
        _reader = reader;
        Field = field;
        if (!reader.Contains(tensor))
            throw StitchingException.InvalidArgument($"{field}.tensor", $"'{tensor}' is not in {reader.Source}; it holds: {string.Join(", ", reader.Entries.Select(e => e.Name))}.");
        _entry = reader.Entry(tensor);
        if (_entry.Shape.Length != 2)
            throw StitchingException.InvalidArgument($"{field}.tensor", $"'{tensor}' has shape [{string.Join(", ", _entry.Shape)}]; it must be [n, d] (tokens by width).");
        if (_entry.DType is not (DType.F32 or DType.F16 or DType.BF16 or DType.F64))
            throw StitchingException.InvalidArgument($"{field}.tensor", $"'{tensor}' is {_entry.DType}; activations must be a float type.");
        Width = (int)_entry.Shape[1];
        Tokens = _entry.Shape[0];
    }

    public string Field { get; }
    public int Width { get; }
    public long Tokens { get; }

    public Task<RowBlock?> NextAsync(CancellationToken ct)
    {
        if (_next >= Tokens) return Task.FromResult<RowBlock?>(null);
        var rows = (int)Math.Min(BlockRows, Tokens - _next);
        var size = _entry.DType.ElementSize();
        var bytes = new byte[(long)rows * Width * size];
        _reader.ReadRange(_entry.Begin + _next * Width * size, bytes);
        var values = _entry.DType == DType.F32 ? MemoryMarshal.Cast<byte, float>(bytes).ToArray() : ToFloats(bytes, rows);
        var rowIds = Enumerable.Range(0, rows).Select(i => (int)(_next + i)).ToArray();
        _next += rows;
        return Task.FromResult<RowBlock?>(new RowBlock(values, rows, Width, null, null, rowIds));
    }

    private float[] ToFloats(byte[] bytes, int rows)
    {
        using var t = TorchTensors.ToTorchFloat(new HostTensor("rows", _entry.DType, [rows, Width], bytes), Field);
        return t.data<float>().ToArray();
    }

    public void Dispose() => _reader.Dispose();
}
