using Stitching.Core.Tensors;
using Stitching.Sae.Architectures;
using static TorchSharp.torch;

namespace Stitching.Sae.Weights;

/// <summary>
/// An SAE's weights as float32 torch tensors (paper section 4, row-vector convention):
/// SAE(x) = (f(x) W_dec + b_dec) / s with f(x) = sigma(x' W_enc + b_enc), x' = s x - b_dec when
/// <see cref="SaeConfig.ApplyBDecToInput"/>, else s x, where s is the input scaling factor (1 unless
/// normalize_activations is "expected_average_only_in"). The weights live in the scaled space: training
/// works there (<see cref="PreActivation"/>, <see cref="DecodeScaled"/>). Tensors are detached from
/// dispose scopes and owned by this object.
/// </summary>
public sealed class SaeParameters : IDisposable
{
    public const string WEncName = "W_enc", BEncName = "b_enc", WDecName = "W_dec", BDecName = "b_dec", ThresholdName = "threshold";

    public SaeParameters(SaeConfig config, Tensor wEnc, Tensor bEnc, Tensor wDec, Tensor bDec, Tensor? threshold)
    {
        Config = config;
        WEnc = Own(wEnc);
        BEnc = Own(bEnc);
        WDec = Own(wDec);
        BDec = Own(bDec);
        Threshold = threshold is null ? null : Own(threshold);
        Architecture = SaeArchitectures.Get(config.Architecture, "architecture");
    }

    public SaeConfig Config { get; }
    public ISaeArchitecture Architecture { get; }
    /// <summary>[d_in, d_sae]</summary>
    public Tensor WEnc { get; }
    /// <summary>[d_sae]</summary>
    public Tensor BEnc { get; }
    /// <summary>[d_sae, d_in]</summary>
    public Tensor WDec { get; }
    /// <summary>[d_in]</summary>
    public Tensor BDec { get; }
    /// <summary>[d_sae] for jumprelu and batchtopk; null otherwise.</summary>
    public Tensor? Threshold { get; }

    /// <summary>Inputs in the scaled space, s x.</summary>
    public Tensor Scale(Tensor x) => Config.ScalingFactor == 1 ? x : x * Config.ScalingFactor;

    /// <summary>Pre-activation of scaled inputs, (s x [- b_dec]) W_enc + b_enc, [n, d_sae].</summary>
    public Tensor PreActivation(Tensor scaled) => (Config.ApplyBDecToInput ? scaled - BDec : scaled).matmul(WEnc) + BEnc;

    /// <summary>Latents f(x) of raw inputs, [n, d_sae].</summary>
    public Tensor Encode(Tensor x) => Architecture.Encode(PreActivation(Scale(x)), this);

    /// <summary>Reconstruction in the scaled space, f W_dec + b_dec, [n, d_in].</summary>
    public Tensor DecodeScaled(Tensor latents) => latents.matmul(WDec) + BDec;

    /// <summary>Reconstruction of raw inputs, (f W_dec + b_dec) / s, [n, d_in].</summary>
    public Tensor Decode(Tensor latents) => Config.ScalingFactor == 1 ? DecodeScaled(latents) : DecodeScaled(latents) / Config.ScalingFactor;

    public Tensor Forward(Tensor x) => Decode(Encode(x));

    /// <summary>
    /// The same function with input scaling factor <paramref name="factor"/> (1 folds the scaling into the
    /// weights): from s0 to s1, W_enc *= s0/s1 and W_dec, b_dec *= s1/s0, so s1 x W_enc and b_dec W_enc are
    /// unchanged and (f W_dec + b_dec) / s1 equals (f W_dec0 + b_dec0) / s0. b_enc and thresholds stay.
    /// </summary>
    public SaeParameters WithScalingFactor(double factor)
    {
        if (!(factor > 0) || double.IsInfinity(factor)) throw new ArgumentOutOfRangeException(nameof(factor), factor, "a scaling factor is finite and positive.");
        var config = Config with { ScalingFactor = factor, NormalizeActivations = factor == 1 ? SaeConfig.NoNormalization : SaeConfig.ExpectedAverageOnlyIn };
        if (factor == Config.ScalingFactor) return Clone(config);
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var ratio = Config.ScalingFactor / factor;
        return new SaeParameters(config, WEnc * ratio, BEnc.clone(), WDec / ratio, BDec / ratio, Threshold?.clone());
    }

    /// <summary>The tensors in SAELens order and names (threshold only when present).</summary>
    public IReadOnlyList<(string Name, Tensor Value)> Named()
    {
        var list = new List<(string, Tensor)> { (WEncName, WEnc), (BEncName, BEnc), (WDecName, WDec), (BDecName, BDec) };
        if (Threshold is not null) list.Add((ThresholdName, Threshold));
        return list;
    }

    public IReadOnlyList<HostTensor> ToHost() => Named().Select(p => TorchTensors.ToHost(p.Value, p.Name)).ToList();

    /// <summary>A deep copy, optionally with another configuration (same shapes).</summary>
    public SaeParameters Clone(SaeConfig? config = null) =>
        new(config ?? Config, WEnc.detach().clone(), BEnc.detach().clone(), WDec.detach().clone(), BDec.detach().clone(), Threshold?.detach().clone());

    public void Dispose()
    {
        foreach (var (_, t) in Named()) t.Dispose();
    }

    private static Tensor Own(Tensor t) => t.to(ScalarType.Float32).contiguous().DetachFromDisposeScope();
}
