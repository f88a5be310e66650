using System.Globalization;
using System.Text.Json.Nodes;
using Stitching.Contracts.Eval.V1;

namespace Stitching.Eval.Reports;

/// <summary>An SaeEvaluation as JSON (the keys `stitch eval sae --json` prints; the report's "sae_eval" rows) and as a Table-2 row.</summary>
public static class SaeTables
{
    public static JsonObject Json(SaeEvaluation r, string sae) => new()
    {
        ["l0"] = r.L0, ["mse"] = r.Mse, ["fvu"] = r.Fvu, ["explained_variance"] = r.ExplainedVariance, ["cosine"] = r.Cosine,
        ["ce_clean"] = r.CeClean, ["ce_spliced"] = r.CeSpliced, ["ce_delta"] = r.CeDelta, ["ce_zero_ablation"] = r.CeZeroAblation,
        ["ce_mean_ablation"] = r.CeMeanAblation, ["loss_recovered"] = r.LossRecovered, ["loss_recovered_mean"] = r.LossRecoveredMean,
        ["kl"] = r.Kl, ["dead_fraction"] = r.DeadFraction, ["tokens"] = r.Tokens, ["predicted_tokens"] = r.PredictedTokens,
        ["rows"] = r.Rows, ["hook"] = r.Hook, ["sae"] = sae,
        ["density_edges"] = new JsonArray(r.DensityEdges.Select(v => (JsonNode)v).ToArray()),
        ["density_counts"] = new JsonArray(r.DensityCounts.Select(v => (JsonNode)v).ToArray()),
    };

    public const string Header = "| SAE | model | width | L0 | FVU | cosine | CE clean | CE spliced | CE delta | loss recovered (zero / mean) | KL | dead |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

    public static string Row(string label, string model, int width, SaeEvaluation r) => string.Create(CultureInfo.InvariantCulture,
        $"| {label} | {model} | {width} | {r.L0:F2} | {r.Fvu:F4} | {r.Cosine:F4} | {r.CeClean:F4} | {r.CeSpliced:F4} | {r.CeDelta:F4} | {r.LossRecovered:F4} / {r.LossRecoveredMean:F4} | {r.Kl:F4} | {r.DeadFraction:F3} |");
}
