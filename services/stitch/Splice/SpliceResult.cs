using Stitching.Core.Forward;
namespace Stitching.Stitch.Splice;

/// <summary>Splice points (the streams before block LayerA of A and LayerB of B) and batching.</summary>
public sealed record SpliceSettings(LanguageModelRef A, LanguageModelRef B, int LayerA, int LayerB, int BatchSize)
{
    public const int DefaultBatchSize = 8, DefaultMaxRows = 64, DefaultContext = 64;

    public string HookA => $"blocks.{LayerA}.hook_resid_pre";
    public string HookB => $"blocks.{LayerB}.hook_resid_pre";
}

/// <summary>Mean next-token CE of one run and the floors of the model that finishes it (docs/metrics.md "Spliced loss").</summary>
public sealed record SpliceRun(string Run, string Finisher, double Ce, double CleanCe, double ZeroAblationCe, double MeanAblationCe, double LossRecovered);

/// <summary>Every run of a spliced evaluation, over <see cref="Sequences"/> rows holding <see cref="Tokens"/> tokens.</summary>
public sealed record SpliceResult(IReadOnlyList<SpliceRun> Rows, int Sequences, long Tokens, double Seconds);
