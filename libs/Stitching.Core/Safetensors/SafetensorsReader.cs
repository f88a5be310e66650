using Stitching.Core.Errors;
using Stitching.Core.Tensors;

namespace Stitching.Core.Safetensors;

/// <summary>
/// Lazy safetensors reader: parses the header on open and reads one tensor's byte range at a time,
/// so a large shard is never loaded whole. Works over a file or any seekable stream.
/// </summary>
public sealed class SafetensorsReader : IDisposable
{
    private readonly Stream _stream;
    private readonly long _dataStart;
    private readonly Dictionary<string, SafetensorsEntry> _byName;

    public SafetensorsReader(Stream stream, string source)
    {
        if (!stream.CanSeek) throw new ArgumentException("safetensors reads need a seekable stream", nameof(stream));
        _stream = stream;
        Source = source;
        (var entries, Metadata, _dataStart) = SafetensorsHeader.Decode(stream, source);
        Entries = entries;
        _byName = entries.ToDictionary(e => e.Name);
    }

    public static SafetensorsReader Open(string path) =>
        new(new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.RandomAccess), path);

    public static SafetensorsReader FromBytes(ReadOnlyMemory<byte> bytes, string source) =>
        new(new ReadOnlyMemoryStream(bytes), source);

    public string Source { get; }
    public IReadOnlyList<SafetensorsEntry> Entries { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public SafetensorsEntry Entry(string name) =>
        _byName.TryGetValue(name, out var e) ? e
            : throw StitchingException.NotFound($"tensor '{name}' is not in {Source}; it holds: {string.Join(", ", _byName.Keys.Take(20))}.", "names");

    /// <summary>
    /// Reads a tensor a caller's request depends on: INVALID_ARGUMENT naming <paramref name="field"/> when the
    /// file lacks it, with <paramref name="holds"/> saying what such a file holds.
    /// </summary>
    public HostTensor Require(string name, string field, string holds) => Contains(name) ? Read(name)
        : throw StitchingException.InvalidArgument(field, $"{Source} has no tensor '{name}'; {holds}");

    public HostTensor Read(string name)
    {
        var e = Entry(name);
        if (e.ByteLength > Array.MaxLength)
            throw StitchingException.ResourceExhausted($"tensor '{name}' in {Source} has {e.ByteLength} bytes, more than one read can hold; read it in row ranges.");
        var data = new byte[e.ByteLength];
        ReadRange(e.Begin, data);
        return new HostTensor(e.Name, e.DType, e.Shape, data);
    }

    /// <summary>Reads bytes at an offset of the data section (for row-range reads of big tensors).</summary>
    public void ReadRange(long dataOffset, Span<byte> destination)
    {
        _stream.Position = _dataStart + dataOffset;
        _stream.ReadExactly(destination);
    }

    public IEnumerable<HostTensor> ReadAll() => Entries.Select(e => Read(e.Name));

    public void Dispose() => _stream.Dispose();

    /// <summary>A read-only seekable stream over memory, so cached bytes parse without a copy.</summary>
    private sealed class ReadOnlyMemoryStream(ReadOnlyMemory<byte> memory) : Stream
    {
        private long _position;
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => memory.Length;
        public override long Position { get => _position; set => _position = value; }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));
        public override int Read(Span<byte> buffer)
        {
            var n = (int)Math.Max(0, Math.Min(buffer.Length, memory.Length - _position));
            memory.Span.Slice((int)_position, n).CopyTo(buffer);
            _position += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => _position = origin switch
        {
            SeekOrigin.Begin => offset, SeekOrigin.Current => _position + offset, _ => memory.Length + offset,
        };
        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
