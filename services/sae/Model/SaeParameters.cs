using Stitching.Core.Tensors;
using Stitching.Sae.Architectures;
using static TorchSharp.torch;

namespace Stitching.Sae.Model;

/// <summary>
/// An SAE's weights as float32 torch tensors (paper section 4, row-vector convention):
/// SAE(x) = f(x) W_dec + b_dec with f(x) = sigma(x' W_enc + b_enc), x' = x - b_dec when
/// <see cref="SaeConfig.ApplyBDecToInput"/>, else x. Tensors are detached from dispose scopes and
/// owned by this object.
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

    /// <summary>Pre-activation x' W_enc + b_enc, [n, d_sae].</summary>
    public Tensor PreActivation(Tensor x) => (Config.ApplyBDecToInput ? x - BDec : x).matmul(WEnc) + BEnc;

    /// <summary>Latents f(x) for inference, [n, d_sae].</summary>
    public Tensor Encode(Tensor x) => Architecture.Encode(PreActivation(x), this);

    /// <summary>Reconstruction f W_dec + b_dec, [n, d_in].</summary>
    public Tensor Decode(Tensor latents) => latents.matmul(WDec) + BDec;

    public Tensor Forward(Tensor x) => Decode(Encode(x));

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
