using System.Buffers.Binary;
using System.Globalization;
using System.Text.Json;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Integration;

/// <summary>Our safetensors against an independent reader/writer: numpy on Debian's python3, header parsed by hand.</summary>
[Trait("Category", "Integration")]
public class SafetensorsPythonInteropTests
{
    private const string PythonReader = """
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', raw[:8])[0]
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
out = {}
for name, e in header.items():
    if name == '__metadata__':
        out[name] = e
        continue
    b, end = e['data_offsets']
    buf = data[b:end]
    dt = e['dtype']
    if dt == 'BF16':
        a = (np.frombuffer(buf, dtype='<u2').astype('<u4') << 16).view('<f4')
    else:
        a = np.frombuffer(buf, dtype={'F32': '<f4', 'F16': '<f2', 'F64': '<f8', 'I32': '<i4', 'I64': '<i8', 'U8': 'u1', 'BOOL': '?'}[dt])
    out[name] = {'dtype': dt, 'shape': e['shape'], 'values': [float(v) for v in a.reshape(-1)]}
print(json.dumps(out))
""";

    private const string PythonWriter = """
import json, struct, sys
import numpy as np
f32 = (np.arange(12, dtype='<f4') * 0.5).reshape(3, 4)
bf16 = ((np.arange(4, dtype='<f4') + 0.5).view('<u4') >> 16).astype('<u2')
tensors = [('f32', 'F32', f32), ('f16', 'F16', (np.arange(6) / 4).astype('<f2')), ('bf16', 'BF16', bf16),
           ('i32', 'I32', np.arange(5, dtype='<i4') - 2), ('i64', 'I64', np.arange(5, dtype='<i8') * 1000000000000),
           ('f64', 'F64', np.arange(3, dtype='<f8') / 3), ('u8', 'U8', np.arange(7, dtype='u1') * 30)]
header, blobs, off = {'__metadata__': {'source': 'numpy'}}, [], 0
for name, dt, a in tensors:
    b = a.tobytes()
    header[name] = {'dtype': dt, 'shape': list(a.shape), 'data_offsets': [off, off + len(b)]}
    blobs.append(b); off += len(b)
h = json.dumps(header).encode()
h += b' ' * ((8 - len(h) % 8) % 8)
open(sys.argv[1], 'wb').write(struct.pack('<Q', len(h)) + h + b''.join(blobs))
""";

    [Fact]
    public void Python_reads_what_we_write_for_every_dtype()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "ours.safetensors");
        var expected = new Dictionary<string, double[]>();
        var tensors = new List<HostTensor>();
        foreach (var dtype in Enum.GetValues<DType>())
        {
            var values = Enumerable.Range(0, 6).Select(i => dtype switch { DType.U8 => i * 40.0, DType.Bool => i % 2, _ => (i - 2) * 1.5 }).ToArray();
            if (dtype is DType.I32 or DType.I64) values = values.Select(Math.Floor).ToArray();
            tensors.Add(new HostTensor(dtype.ToString(), dtype, [2, 3], Encode(dtype, values)));
            expected[dtype.ToString()] = values;
        }
        SafetensorsWriter.Write(path, tensors, new Dictionary<string, string> { ["made_by"] = "stitching" });

        using var doc = JsonDocument.Parse(Python.Run(PythonReader, path));
        Assert.Equal("stitching", doc.RootElement.GetProperty("__metadata__").GetProperty("made_by").GetString());
        foreach (var (name, values) in expected)
        {
            var e = doc.RootElement.GetProperty(name);
            Assert.Equal([2, 3], e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt32()));
            Assert.Equal(values, e.GetProperty("values").EnumerateArray().Select(x => x.GetDouble()));
        }
    }

    [Fact]
    public void We_read_what_numpy_writes()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "numpy.safetensors");
        Python.Run(PythonWriter, path);
        using var r = SafetensorsReader.Open(path);
        Assert.Equal("numpy", r.Metadata["source"]);
        Assert.Equal([3L, 4L], r.Read("f32").Shape);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => i * 0.5), Decode(r.Read("f32")));
        Assert.Equal(Enumerable.Range(0, 6).Select(i => i / 4.0), Decode(r.Read("f16")));
        Assert.Equal(Enumerable.Range(0, 4).Select(i => i + 0.5), Decode(r.Read("bf16")));
        Assert.Equal(Enumerable.Range(0, 5).Select(i => i - 2.0), Decode(r.Read("i32")));
        Assert.Equal(Enumerable.Range(0, 5).Select(i => i * 1e12), Decode(r.Read("i64")));
        Assert.Equal(Enumerable.Range(0, 3).Select(i => i / 3.0), Decode(r.Read("f64")));
        Assert.Equal(Enumerable.Range(0, 7).Select(i => i * 30.0), Decode(r.Read("u8")));
    }

    private static byte[] Encode(DType dtype, double[] values)
    {
        var size = dtype.ElementSize();
        var bytes = new byte[values.Length * size];
        for (var i = 0; i < values.Length; i++)
        {
            var s = bytes.AsSpan(i * size);
            switch (dtype)
            {
                case DType.F32: BinaryPrimitives.WriteSingleLittleEndian(s, (float)values[i]); break;
                case DType.F64: BinaryPrimitives.WriteDoubleLittleEndian(s, values[i]); break;
                case DType.F16: BinaryPrimitives.WriteHalfLittleEndian(s, (Half)values[i]); break;
                case DType.BF16: BinaryPrimitives.WriteUInt16LittleEndian(s, (ushort)(BitConverter.SingleToUInt32Bits((float)values[i]) >> 16)); break;
                case DType.I32: BinaryPrimitives.WriteInt32LittleEndian(s, (int)values[i]); break;
                case DType.I64: BinaryPrimitives.WriteInt64LittleEndian(s, (long)values[i]); break;
                case DType.U8 or DType.Bool: s[0] = (byte)values[i]; break;
            }
        }
        return bytes;
    }

    private static double[] Decode(HostTensor t)
    {
        var size = t.DType.ElementSize();
        var span = t.Data.Span;
        var result = new double[t.ElementCount];
        for (var i = 0; i < result.Length; i++)
        {
            var s = span.Slice(i * size, size);
            result[i] = t.DType switch
            {
                DType.F32 => BinaryPrimitives.ReadSingleLittleEndian(s),
                DType.F64 => BinaryPrimitives.ReadDoubleLittleEndian(s),
                DType.F16 => (double)BinaryPrimitives.ReadHalfLittleEndian(s),
                DType.BF16 => BitConverter.UInt32BitsToSingle((uint)BinaryPrimitives.ReadUInt16LittleEndian(s) << 16),
                DType.I32 => BinaryPrimitives.ReadInt32LittleEndian(s),
                DType.I64 => BinaryPrimitives.ReadInt64LittleEndian(s),
                _ => s[0],
            };
        }
        return result;
    }
}
