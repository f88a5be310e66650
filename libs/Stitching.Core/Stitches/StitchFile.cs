using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using static TorchSharp.torch;

namespace Stitching.Core.Stitches;

/// <summary>
/// The file form of a stitch, the one definition every service reads and writes: an artifact of kind
/// "stitch" holding stitch.safetensors with P_up [d_A, d_B], b_up [d_B], P_down [d_B, d_A], b_down [d_A],
/// float32, readable by Python's safetensors. Host tensors cross threads; torch tensors stay on the torch thread.
/// </summary>
public static class StitchFile
{
    public const string Kind = "stitch";
    public const string FileName = "stitch.safetensors";
    public const string PUp = "P_up", BUp = "b_up", PDown = "P_down", BDown = "b_down";
    public static readonly IReadOnlyList<string> TensorNames = [PUp, BUp, PDown, BDown];
    public const string Holds = "a stitch file holds P_up [d_A, d_B], b_up [d_B], P_down [d_B, d_A], b_down [d_A].";

    /// <summary>The four tensors of a stitch file, in file order (any thread); missing ones name <paramref name="field"/>.</summary>
    public static IReadOnlyList<HostTensor> Read(SafetensorsReader reader, string field) =>
        TensorNames.Select(n => reader.Require(n, field, Holds)).ToList();

    /// <summary>The four tensors of a stitch file in its bytes (any thread).</summary>
    public static IReadOnlyList<HostTensor> Read(ReadOnlyMemory<byte> bytes, string source, string field)
    {
        using var reader = SafetensorsReader.FromBytes(bytes, source);
        return Read(reader, field);
    }

    /// <summary>Torch tensors from host ones, validated (torch thread).</summary>
    public static AffineStitch ToStitch(IReadOnlyList<HostTensor> tensors, string field)
    {
        HostTensor Get(string name) => tensors.FirstOrDefault(t => t.Name == name)
            ?? throw Errors.StitchingException.InvalidArgument(field, $"the stitch has no tensor '{name}'; {Holds}");
        var t = TensorNames.Select(n => TorchTensors.ToTorchFloat(Get(n), $"{field}.{n}")).ToArray();
        return AffineStitch.Validated(t[0], t[1], t[2], t[3], field);
    }

    /// <summary>Host copies of the four tensors in file order, float32 (torch thread).</summary>
    public static IReadOnlyList<HostTensor> ToHost(AffineStitch s) =>
        new[] { s.PUp, s.BUp, s.PDown, s.BDown }.Select((t, i) => TorchTensors.ToHost(t.to(ScalarType.Float32), TensorNames[i])).ToList();

    /// <summary>The safetensors bytes of a stitch file.</summary>
    public static byte[] ToBytes(IReadOnlyList<HostTensor> tensors, IReadOnlyDictionary<string, string>? metadata = null) =>
        SafetensorsWriter.ToBytes(tensors, metadata);
}
