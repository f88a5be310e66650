namespace Stitching.Sae.Weights;

/// <summary>
/// What defines an SAE besides its weights, named as SAELens names it (cfg.json): architecture, shapes,
/// k for top-k activations, and whether b_dec is subtracted from the input before encoding.
/// </summary>
/// <param name="Architecture">A registered name: topk, batchtopk, jumprelu, standard (ReLU + L1).</param>
/// <param name="SparsityCoefficient">L1 (standard) or L0 (jumprelu) coefficient; used in training only.</param>
/// <param name="Bandwidth">JumpReLU straight-through kernel width; used in training only.</param>
/// <param name="NormalizeActivations">"none", or "expected_average_only_in": inputs are multiplied by
/// <paramref name="ScalingFactor"/> before encoding and reconstructions divided by it (SAELens's name; the
/// factor makes E||s x||^2 = d_in on the training set, docs/metrics.md).</param>
public sealed record SaeConfig(
    string Architecture,
    int DIn,
    int DSae,
    int K = 0,
    bool ApplyBDecToInput = false,
    string Model = "",
    string Hook = "",
    double SparsityCoefficient = 0,
    double Bandwidth = 0,
    string NormalizeActivations = "none",
    double ScalingFactor = 1)
{
    public const string NoNormalization = "none", ExpectedAverageOnlyIn = "expected_average_only_in";
}
