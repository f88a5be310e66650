using System.Text.Json;

namespace Stitching.Sae.Training;

/// <summary>
/// The metrics of a run against FLOPs (training_log.json, stored with the SAE and its checkpoints): one
/// row every log_every steps and at the last step. Warm-start comparisons read it.
/// </summary>
public sealed class TrainingLog
{
    public const string File = "training_log.json";
    private static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower, WriteIndented = false };

    public List<StepMetrics> Rows { get; init; } = [];

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(Rows, Options);

    public static TrainingLog FromJson(byte[] json) => new() { Rows = JsonSerializer.Deserialize<List<StepMetrics>>(json, Options) ?? [] };
}
