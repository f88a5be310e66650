using Stitching.Sae.Data;
using Stitching.Sae.Architectures;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Training;

/// <summary>
/// A new SAE as the paper's recipe starts it (section 4): decoder rows drawn from a seeded normal and
/// scaled to unit norm, encoder = decoder transpose, b_enc = 0, b_dec = the data mean; JumpReLU starts
/// at its initial threshold, BatchTopK at an unset (zero) threshold.
/// </summary>
public static class SaeInitializer
{
    public static SaeParameters Create(SaeConfig config, float[] dataMean, ulong seed, double initialThreshold = 0)
    {
        var (m, d) = (config.DSae, config.DIn);
        var values = new float[(long)m * d];
        var state = seed;
        for (long i = 0; i < values.Length; i++) values[i] = (float)SplitMix64.NextNormal(ref state);
        using var scope = NewDisposeScope();
        var wDec = tensor(values, [m, d]);
        wDec = wDec / wDec.norm(1, keepdim: true);
        var arch = SaeArchitectures.Get(config.Architecture, "sae.architecture");
        return new SaeParameters(config, wDec.t().contiguous(), zeros(m), wDec, tensor(dataMean), arch.InitialThreshold(m, initialThreshold));
    }
}
