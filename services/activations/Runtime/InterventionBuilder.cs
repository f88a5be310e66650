using Stitching.Contracts.Activations.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Models;
using Stitching.Models.Runtime;
using Proto = Stitching.Contracts.Common.V1;
using TorchTensor = TorchSharp.torch.Tensor;

namespace Stitching.Activations.Runtime;

/// <summary>
/// Turns request interventions into runtime ones. Artifact tensors are read first (off the torch thread,
/// <see cref="ReadArtifacts"/>); <see cref="Build"/> runs on the torch thread.
/// </summary>
public static class InterventionBuilder
{
    /// <summary>Reads the tensors that artifact-backed interventions name, keyed by "kind/id/file/name".</summary>
    public static Dictionary<string, HostTensor> ReadArtifacts(IEnumerable<Intervention> interventions, ArtifactStore store)
    {
        var tensors = new Dictionary<string, HostTensor>();
        foreach (var (iv, i) in interventions.Select((iv, i) => (iv, i)))
        {
            if (iv.KindCase != Intervention.KindOneofCase.ArtifactAffine) continue;
            var a = iv.ArtifactAffine;
            var field = $"interventions[{i}].artifact_affine";
            if (a.Artifact is null) throw StitchingException.InvalidArgument(field + ".artifact", "is required.");
            if (a.Matrices.Count == 0) throw StitchingException.InvalidArgument(field + ".matrices", "name at least one matrix tensor (e.g. P_up, P_down).");
            var file = string.IsNullOrEmpty(a.File) ? "stitch.safetensors" : a.File;
            ArtifactIds.Validate(a.Artifact);
            using var reader = SafetensorsReader.FromBytes(store.ReadAllBytes(a.Artifact, file), $"{a.Artifact.Kind}/{a.Artifact.Id}/{file}");
            foreach (var name in a.Matrices.Concat(a.Biases).Where(n => !string.IsNullOrEmpty(n)))
                tensors[Key(a, file, name)] = reader.Read(name);
        }
        return tensors;
    }

    private static string Key(ArtifactAffineChain a, string file, string name) => $"{a.Artifact.Kind}/{a.Artifact.Id}/{file}/{name}";

    public static Dictionary<HookPoint, IReadOnlyList<IIntervention>> Build(
        IEnumerable<Intervention> interventions, CausalLm model, IReadOnlyDictionary<string, HostTensor> artifactTensors,
        Func<int, IReadOnlyList<int>?>? positionsOverride = null)
    {
        var result = new Dictionary<HookPoint, List<IIntervention>>();
        foreach (var (iv, i) in interventions.Select((iv, i) => (iv, i)))
        {
            var field = $"interventions[{i}]";
            var hook = model.ParseHook(iv.Hook, field + ".hook");
            IReadOnlyList<int>? positions = iv.Positions.Count > 0 ? iv.Positions.ToList() : positionsOverride?.Invoke(i);
            TorchTensor Float(Proto.Tensor? t, string name) => t is null
                ? throw StitchingException.InvalidArgument($"{field}.{name}", "is required.")
                : TorchTensors.ToTorchFloat(TensorCodec.FromProto(t, $"{field}.{name}"), $"{field}.{name}");
            IIntervention built = iv.KindCase switch
            {
                Intervention.KindOneofCase.Replace => new ReplaceIntervention(Float(iv.Replace, "replace"), positions),
                Intervention.KindOneofCase.Add => new AddIntervention(Float(iv.Add.Vector, "add.vector"), iv.Add.Scale == 0 ? 1 : iv.Add.Scale, positions),
                Intervention.KindOneofCase.Clamp => new ClampIntervention(Float(iv.Clamp.Direction, "clamp.direction"), iv.Clamp.Value, positions),
                Intervention.KindOneofCase.Affine => new AffineIntervention(iv.Affine.Maps.Select((m, j) =>
                    (Float(m.Matrix, $"affine.maps[{j}].matrix"), m.Bias is null ? null : (TorchTensor?)Float(m.Bias, $"affine.maps[{j}].bias"))).ToList(), positions),
                Intervention.KindOneofCase.ArtifactAffine => ArtifactAffine(iv.ArtifactAffine, artifactTensors, positions, field),
                Intervention.KindOneofCase.Ablate => new AblateIntervention(iv.Ablate.Mean is null ? null : Float(iv.Ablate.Mean, "ablate.mean"), positions),
                _ => throw StitchingException.InvalidArgument(field, "set one kind: replace, add, clamp, affine, artifact_affine or ablate."),
            };
            if (!result.TryGetValue(hook, out var list)) result[hook] = list = [];
            list.Add(built);
        }
        return result.ToDictionary(p => p.Key, p => (IReadOnlyList<IIntervention>)p.Value);
    }

    private static AffineIntervention ArtifactAffine(ArtifactAffineChain a, IReadOnlyDictionary<string, HostTensor> tensors, IReadOnlyList<int>? positions, string field)
    {
        var file = string.IsNullOrEmpty(a.File) ? "stitch.safetensors" : a.File;
        var maps = a.Matrices.Select((m, j) =>
        {
            var bias = j < a.Biases.Count && !string.IsNullOrEmpty(a.Biases[j]) ? a.Biases[j] : null;
            return (TorchTensors.ToTorchFloat(tensors[Key(a, file, m)], $"{field}.matrices[{j}]"),
                    bias is null ? null : (TorchTensor?)TorchTensors.ToTorchFloat(tensors[Key(a, file, bias)], $"{field}.biases[{j}]"));
        }).ToList();
        return new AffineIntervention(maps, positions);
    }
}
