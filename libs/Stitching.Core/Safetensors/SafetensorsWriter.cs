using Stitching.Core.Tensors;

namespace Stitching.Core.Safetensors;

/// <summary>Writes safetensors files that Python's safetensors (and numpy with a few lines) reads.</summary>
public static class SafetensorsWriter
{
    public static void Write(Stream destination, IReadOnlyList<HostTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var header = SafetensorsHeader.Encode(tensors.Select(t => (t.Name, t.DType, t.Shape)).ToList(), metadata);
        destination.Write(header);
        foreach (var t in tensors) destination.Write(t.Data.Span);
    }

    /// <summary>Writes to a path through a temp file and a rename, so readers never see half a file.</summary>
    public static void Write(string path, IReadOnlyList<HostTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        Artifacts.AtomicFile.Write(path, s => Write(s, tensors, metadata));

    public static byte[] ToBytes(IReadOnlyList<HostTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var ms = new MemoryStream();
        Write(ms, tensors, metadata);
        return ms.ToArray();
    }
}
