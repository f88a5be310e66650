using System.Text.Json;

namespace Stitching.Sae.Evaluation;

/// <summary>The held-out curve of a run (heldout_log.json, stored with the SAE and its checkpoints).</summary>
public sealed class HeldOutLog
{
    public const string File = "heldout_log.json";
    private static readonly JsonSerializerOptions Options = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public List<EvalRow> Rows { get; init; } = [];

    public byte[] ToJson() => JsonSerializer.SerializeToUtf8Bytes(Rows, Options);

    public static HeldOutLog FromJson(byte[] json) => new() { Rows = JsonSerializer.Deserialize<List<EvalRow>>(json, Options) ?? [] };

    /// <summary>
    /// Whether step <paramref name="step"/> of <paramref name="totalSteps"/> is evaluated: before training,
    /// each of the first 16 steps (the warm start's advantage lives early), every <paramref name="every"/>
    /// steps, and the last.
    /// </summary>
    public static bool IsEvalStep(long step, long totalSteps, long every) =>
        step <= 16 || step == totalSteps || (every > 0 && step % every == 0);
}
