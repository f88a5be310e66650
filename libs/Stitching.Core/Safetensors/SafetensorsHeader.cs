using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using Stitching.Core.Errors;
using Stitching.Core.Tensors;

namespace Stitching.Core.Safetensors;

/// <summary>One tensor's entry in a safetensors header; offsets are relative to the data section.</summary>
public sealed record SafetensorsEntry(string Name, DType DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}

/// <summary>
/// The safetensors format: 8-byte little-endian header length N, N bytes of JSON
/// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}}), then the data.
/// We pad the JSON with spaces so the data starts 8-byte aligned, as the reference writer does.
/// </summary>
public static class SafetensorsHeader
{
    public const long MaxHeaderBytes = 100_000_000;

    public static byte[] Encode(IReadOnlyList<(string Name, DType DType, long[] Shape)> tensors, IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject("__metadata__");
                foreach (var (k, v) in metadata) w.WriteString(k, v);
                w.WriteEndObject();
            }
            long offset = 0;
            var seen = new HashSet<string>();
            foreach (var (name, dtype, shape) in tensors)
            {
                if (name == "__metadata__" || !seen.Add(name))
                    throw StitchingException.InvalidArgument("tensor.name", $"'{name}' is reserved or repeated; every tensor in a file needs its own name.");
                var len = HostTensor.ByteLength(dtype, shape);
                w.WriteStartObject(name);
                w.WriteString("dtype", dtype.SafetensorsName());
                w.WriteStartArray("shape");
                foreach (var s in shape) w.WriteNumberValue(s);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + len);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += len;
            }
            w.WriteEndObject();
        }
        var json = buffer.ToArray();
        var padded = (json.Length + 7) / 8 * 8;
        var result = new byte[8 + padded];
        BinaryPrimitives.WriteUInt64LittleEndian(result, (ulong)padded);
        json.CopyTo(result, 8);
        result.AsSpan(8 + json.Length).Fill((byte)' ');
        return result;
    }

    /// <summary>Parses and validates a header; returns entries in data order and the metadata.</summary>
    public static (List<SafetensorsEntry> Entries, Dictionary<string, string> Metadata, long DataStart) Decode(Stream stream, string source)
    {
        Span<byte> lenBytes = stackalloc byte[8];
        stream.Position = 0;
        if (stream.ReadAtLeast(lenBytes, 8, throwOnEndOfStream: false) < 8)
            throw Corrupt(source, "is shorter than the 8-byte header length");
        var headerLen = BinaryPrimitives.ReadUInt64LittleEndian(lenBytes);
        if (headerLen > MaxHeaderBytes || (long)headerLen > stream.Length - 8)
            throw Corrupt(source, $"declares a {headerLen}-byte header, which does not fit the file");
        var json = new byte[headerLen];
        stream.ReadExactly(json);
        var dataStart = 8 + (long)headerLen;
        var dataLength = stream.Length - dataStart;
        var entries = new List<SafetensorsEntry>();
        var metadata = new Dictionary<string, string>();
        try
        {
            using var doc = JsonDocument.Parse(json);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (prop.Name == "__metadata__")
                {
                    foreach (var m in prop.Value.EnumerateObject()) metadata[m.Name] = m.Value.GetString() ?? "";
                    continue;
                }
                var dtypeName = prop.Value.GetProperty("dtype").GetString() ?? "";
                if (!DTypes.TryParseSafetensors(dtypeName, out var dtype))
                    throw Corrupt(source, $"tensor '{prop.Name}' has dtype '{dtypeName}', which this reader does not support (F32, F16, BF16, I32, I64, F64, U8)");
                var shape = prop.Value.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                var offsets = prop.Value.GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt64()).ToArray();
                if (offsets.Length != 2 || offsets[0] < 0 || offsets[1] < offsets[0] || offsets[1] > dataLength)
                    throw Corrupt(source, $"tensor '{prop.Name}' has data_offsets outside the file");
                if (offsets[1] - offsets[0] != HostTensor.ByteLength(dtype, shape))
                    throw Corrupt(source, $"tensor '{prop.Name}' spans {offsets[1] - offsets[0]} bytes but its dtype and shape need {HostTensor.ByteLength(dtype, shape)}");
                entries.Add(new SafetensorsEntry(prop.Name, dtype, shape, offsets[0], offsets[1]));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or KeyNotFoundException or FormatException)
        {
            throw Corrupt(source, $"has a malformed JSON header ({e.Message})");
        }
        entries.Sort((a, b) => a.Begin.CompareTo(b.Begin));
        return (entries, metadata, dataStart);
    }

    private static StitchingException Corrupt(string source, string what) =>
        StitchingException.DataCorrupted($"safetensors file {source} {what}.");
}
