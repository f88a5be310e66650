namespace Stitching.Sae.Model;

/// <summary>
/// What defines an SAE besides its weights, named as SAELens names it (cfg.json): architecture, shapes,
/// k for top-k activations, and whether b_dec is subtracted from the input before encoding.
/// </summary>
/// <param name="Architecture">A registered name: topk, batchtopk, jumprelu, standard (ReLU + L1).</param>
/// <param name="SparsityCoefficient">L1 (standard) or L0 (jumprelu) coefficient; used in training only.</param>
/// <param name="Bandwidth">JumpReLU straight-through kernel width; used in training only.</param>
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
    string NormalizeActivations = "none");
