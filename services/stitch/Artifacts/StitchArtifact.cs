using Stitching.Contracts.Common.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Stitch.Fitting;
using static TorchSharp.torch;

namespace Stitching.Stitch.Artifacts;

/// <summary>
/// On-disk form of a stitch (kind "stitch"): stitch.safetensors with P_up [d_A, d_B], b_up [d_B],
/// P_down [d_B, d_A], b_down [d_A] in float32 (row-vector convention, paper section 2), readable by
/// Python's safetensors, plus the manifest (models, hooks, method, tokens, metrics, flops, seconds).
/// </summary>
public static class StitchArtifact
{
    public const string Kind = "stitch";
    public const string File = "stitch.safetensors";
    public static readonly string[] TensorNames = ["P_up", "b_up", "P_down", "b_down"];

    /// <summary>Host copies of the four tensors in file order (torch thread).</summary>
    public static IReadOnlyList<HostTensor> ToHost(AffineStitch s) =>
        new[] { s.PUp, s.BUp, s.PDown, s.BDown }.Select((t, i) => TorchTensors.ToHost(t.to(ScalarType.Float32), TensorNames[i])).ToList();

    /// <summary>Torch tensors from host ones, validated (torch thread).</summary>
    public static AffineStitch FromHost(IReadOnlyList<HostTensor> tensors, string source)
    {
        HostTensor Get(string name) => tensors.FirstOrDefault(t => t.Name == name)
            ?? throw StitchingException.InvalidArgument(source, $"has no tensor '{name}'; a stitch holds {string.Join(", ", TensorNames)}.");
        var t = TensorNames.Select(n => TorchTensors.ToTorchFloat(Get(n), $"{source}.{n}")).ToArray();
        return AffineStitch.Validated(t[0], t[1], t[2], t[3], source);
    }

    /// <summary>Reads the four tensors of a stitch artifact (NOT_FOUND when it does not exist).</summary>
    public static IReadOnlyList<HostTensor> Read(ArtifactStore store, ArtifactRef r, string field)
    {
        ArtifactIds.Validate(r, field);
        if (r.Kind != Kind) throw StitchingException.InvalidArgument(field + ".kind", $"'{r.Kind}' is not '{Kind}'; give a stitch artifact (from Fit or ImportStitch).");
        if (!store.Exists(r)) throw StitchingException.NotFound($"{field}: stitch {r.Id} does not exist; list artifacts of kind 'stitch' to see what is there.", field);
        using var reader = SafetensorsReader.FromBytes(store.ReadAllBytes(r, File), $"{r.Display()}/{File}");
        return TensorNames.Select(reader.Read).ToList();
    }

    /// <summary>Writes the file and the manifest and commits the artifact.</summary>
    public static ArtifactManifest Write(ArtifactStore store, ArtifactRef r, IReadOnlyList<HostTensor> tensors,
        IReadOnlyDictionary<string, string> metadata, IReadOnlyDictionary<string, double> metrics, string specJson)
    {
        using var writer = store.Create(r);
        writer.WriteFile(File, SafetensorsWriter.ToBytes(tensors, metadata));
        foreach (var (k, v) in metadata) writer.Manifest.Metadata[k] = v;
        foreach (var (k, v) in metrics) writer.Manifest.Metrics[k] = v;
        writer.Manifest.SpecJson = specJson;
        return writer.Commit();
    }
}
