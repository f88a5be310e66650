using System.Buffers.Binary;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;

namespace Stitching.Tests.Core;

[Trait("Category", "Unit")]
public class SafetensorsTests
{
    [Fact]
    public void Written_file_reads_back_every_tensor_and_metadata()
    {
        var a = HostTensor.FromFloats("a", [1f, -2f, 3.5f, 4f, 5f, 6f], 2, 3);
        var b = new HostTensor("ids", DType.I64, [3], BitConverterBytes(new long[] { 7, -1, long.MaxValue }));
        var bytes = SafetensorsWriter.ToBytes([a, b], new Dictionary<string, string> { ["model"] = "m" });

        using var r = SafetensorsReader.FromBytes(bytes, "mem");
        Assert.Equal(["a", "ids"], r.Entries.Select(e => e.Name));
        Assert.Equal("m", r.Metadata["model"]);
        Assert.Equal(a.ToFloats(), r.Read("a").ToFloats());
        Assert.Equal(b.Data.ToArray(), r.Read("ids").Data.ToArray());
        Assert.Equal([2L, 3L], r.Read("a").Shape);
    }

    [Fact]
    public void Data_section_starts_8_byte_aligned()
    {
        var bytes = SafetensorsWriter.ToBytes([HostTensor.FromFloats("x", [1f], 1)]);
        var headerLen = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        Assert.Equal(0UL, headerLen % 8);
        Assert.Equal(8 + (long)headerLen + 4, bytes.Length);
    }

    [Fact]
    public void Lazy_read_touches_only_the_requested_range()
    {
        var big = new float[1 << 16];
        for (var i = 0; i < big.Length; i++) big[i] = i;
        var bytes = SafetensorsWriter.ToBytes([HostTensor.FromFloats("big", big, big.Length), HostTensor.FromFloats("small", [42f], 1)]);
        var counting = new CountingStream(new MemoryStream(bytes));
        using var r = new SafetensorsReader(counting, "mem");
        var headerBytes = counting.BytesRead;
        Assert.Equal([42f], r.Read("small").ToFloats());
        Assert.Equal(4, counting.BytesRead - headerBytes);
    }

    [Fact]
    public void Truncated_file_is_rejected_as_corrupted()
    {
        var bytes = SafetensorsWriter.ToBytes([HostTensor.FromFloats("x", [1f, 2f], 2)]);
        var e = Assert.Throws<StitchingException>(() => SafetensorsReader.FromBytes(bytes.AsMemory(0, bytes.Length - 1), "cut"));
        Assert.Equal(ErrorKind.DataLoss, e.Kind);
        Assert.Contains("data_offsets", e.Message);
    }

    [Fact]
    public void Unknown_tensor_name_is_not_found_and_lists_what_exists()
    {
        using var r = SafetensorsReader.FromBytes(SafetensorsWriter.ToBytes([HostTensor.FromFloats("x", [1f], 1)]), "mem");
        var e = Assert.Throws<StitchingException>(() => r.Read("y"));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains("x", e.Message);
    }

    private static byte[] BitConverterBytes(long[] values)
    {
        var bytes = new byte[values.Length * 8];
        for (var i = 0; i < values.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(i * 8), values[i]);
        return bytes;
    }

    private sealed class CountingStream(Stream inner) : Stream
    {
        public long BytesRead;
        public override bool CanRead => true;
        public override bool CanSeek => true;
        public override bool CanWrite => false;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => inner.Position = value; }
        public override int Read(byte[] buffer, int offset, int count) { var n = inner.Read(buffer, offset, count); BytesRead += n; return n; }
        public override long Seek(long offset, SeekOrigin origin) => inner.Seek(offset, origin);
        public override void Flush() { }
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
