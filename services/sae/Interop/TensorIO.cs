using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Interop;

/// <summary>Reading SAE tensors from safetensors files of either interop format, with shape checks.</summary>
internal static class TensorIO
{
    public static Tensor Require(SafetensorsReader reader, string name, string field) =>
        TorchTensors.ToTorchFloat(reader.Require(name, field, $"it holds {string.Join(", ", reader.Entries.Select(e => e.Name))}."), field);

    public static void CheckShapes(SaeParameters sae, string source, string field)
    {
        var (d, m) = ((long)sae.Config.DIn, (long)sae.Config.DSae);
        var expected = new (string, Tensor?, long[])[]
        {
            (SaeParameters.WEncName, sae.WEnc, [d, m]), (SaeParameters.BEncName, sae.BEnc, [m]),
            (SaeParameters.WDecName, sae.WDec, [m, d]), (SaeParameters.BDecName, sae.BDec, [d]),
            (SaeParameters.ThresholdName, sae.Threshold, [m]),
        };
        foreach (var (name, t, shape) in expected)
            if (t is not null && !t.shape.SequenceEqual(shape))
                throw StitchingException.InvalidArgument(field, $"{source}: {name} has shape [{string.Join(", ", t.shape)}] but d_in = {d}, d_sae = {m} need [{string.Join(", ", shape)}].");
    }
}
