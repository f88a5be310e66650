using Stitching.Core.Activations;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Caching;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;

namespace Stitching.Stitch.Data;

/// <summary>Opens the row source an ActivationSource names: a hook of an ActivationSet or a tensor of a tensors artifact.</summary>
public sealed class RowSources(ArtifactStore store, IShardCache cache)
{
    public const string DefaultTensor = "activations";
    public const string DefaultFile = "tensors.safetensors";

    public IRowSource Open(ActivationSource? source, string field)
    {
        if (source?.Artifact is null) throw StitchingException.InvalidArgument(field + ".artifact", "is required; give an activation-set or tensors artifact.");
        var r = ArtifactIds.Validate(source.Artifact, field + ".artifact");
        if (!store.Exists(r))
            throw StitchingException.NotFound($"{field}.artifact: {r.Display()} does not exist; list artifacts to see what is there.", field + ".artifact");
        switch (r.Kind)
        {
            case ActivationSetLayout.Kind:
                var set = ActivationSetReader.Open(store, cache, r, field + ".artifact");
                return new ActivationSetSource(set, set.Info.ChooseHook(source.Tensor, field + ".tensor"), field);
            case TensorFileSource.Kind:
                var file = string.IsNullOrEmpty(source.File) ? DefaultFile : source.File;
                var reader = new SafetensorsReader(store.OpenRead(r, file), $"{r.Display()}/{file}");
                try { return new TensorFileSource(reader, string.IsNullOrEmpty(source.Tensor) ? DefaultTensor : source.Tensor, field); }
                catch { reader.Dispose(); throw; }
            default:
                throw StitchingException.InvalidArgument(field + ".artifact.kind", $"'{r.Kind}' cannot hold activations; use '{ActivationSetLayout.Kind}' or '{TensorFileSource.Kind}'.");
        }
    }

    /// <summary>Opens both sides and checks they can pair: same TokenSet for activation sets, equal token counts.</summary>
    public (IRowSource A, IRowSource B) OpenPair(ActivationSource? a, ActivationSource? b)
    {
        var sa = Open(a, "a");
        var sb = Open(b, "b");
        if (sa is ActivationSetSource asA && sb is ActivationSetSource asB && asA.TokenSet != asB.TokenSet)
            throw StitchingException.InvalidArgument("b", $"activation set b is over TokenSet {asB.TokenSet} but a over {asA.TokenSet}; extract both models in one paired extraction so rows align.");
        PairedRows.CheckShapes(sa, sb);
        return (sa, sb);
    }

    public static void Close(IRowSource source) => (source as IDisposable)?.Dispose();
}
