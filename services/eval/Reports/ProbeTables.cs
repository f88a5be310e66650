using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Stitching.Contracts.Eval.V1;
using P = Stitching.Eval.Probes.ProbeEvaluator;

namespace Stitching.Eval.Reports;

/// <summary>A ProbeEvaluation as Markdown tables and as JSON (the report's "probes" section, docs/report.md).</summary>
public static class ProbeTables
{
    private static readonly (string Probe, string Title)[] Dense = [(P.DenseA, "dense A"), (P.DenseB, "dense B"), (P.DenseTransferred, "dense A -> B (P_down)")];
    private static readonly (string Probe, string Title)[] Sparse =
    [
        (P.SparseA, "SAE A"), (P.SparseTransferred, "transferred, no retrain"), (P.SparseRetrained, "transferred, retrained"),
        (P.SparseNativeB, "native SAE B"), (P.SparseRandom, "random latents"),
    ];

    private static string Cell(ProbeScore? s) => s is null ? "" : string.Create(CultureInfo.InvariantCulture, $"{s.Accuracy:F3} [{s.CiLow:F3}, {s.CiHigh:F3}]");

    public static string Markdown(ProbeEvaluation e)
    {
        var md = new StringBuilder();
        md.AppendLine($"Dataset {e.Dataset} ({(e.TokenLevel ? "token level" : "document level, mean-pooled rows")}), hooks {e.HookA} / {e.HookB}; " +
                      $"{e.TokensA:N0} tokens run on A, {e.TokensB:N0} on B. Accuracy on the balanced test split with 95% Wilson intervals (chance 0.5).\n");
        md.AppendLine("| task | train / val / test | " + string.Join(" | ", Dense.Select(d => d.Title)) + " |");
        md.AppendLine("|---|---|" + string.Concat(Dense.Select(_ => "---|")));
        foreach (var t in e.Tasks)
            md.AppendLine($"| {t.Name} | {t.Train} / {t.Validation} / {t.Test} | " + string.Join(" | ", Dense.Select(d => Cell(t.Scores.FirstOrDefault(s => s.Probe == d.Probe)))) + " |");
        md.AppendLine();
        foreach (var t in e.Tasks.Where(t => t.Scores.Any(s => s.K > 0)))
        {
            md.AppendLine($"Sparse probes, {t.Name}:\n");
            md.AppendLine("| k | " + string.Join(" | ", Sparse.Select(s => s.Title)) + " |");
            md.AppendLine("|---|" + string.Concat(Sparse.Select(_ => "---|")));
            foreach (var k in t.Scores.Where(s => s.K > 0).Select(s => s.K).Distinct().Order())
                md.AppendLine($"| {k} | " + string.Join(" | ", Sparse.Select(p => Cell(t.Scores.FirstOrDefault(s => s.Probe == p.Probe && s.K == k)))) + " |");
            md.AppendLine();
        }
        return md.ToString();
    }

    public static JsonObject Json(ProbeEvaluation e) => new()
    {
        ["dataset"] = e.Dataset, ["token_level"] = e.TokenLevel, ["hook_a"] = e.HookA, ["hook_b"] = e.HookB, ["tokens_a"] = e.TokensA, ["tokens_b"] = e.TokensB,
        ["tasks"] = new JsonArray(e.Tasks.Select(t => (JsonNode)new JsonObject
        {
            ["name"] = t.Name, ["positive"] = t.Positive, ["train"] = t.Train, ["validation"] = t.Validation, ["test"] = t.Test,
            ["scores"] = new JsonArray(t.Scores.Select(s => (JsonNode)new JsonObject
            {
                ["probe"] = s.Probe, ["k"] = s.K, ["accuracy"] = s.Accuracy, ["ci_low"] = s.CiLow, ["ci_high"] = s.CiHigh, ["test"] = s.Test, ["l2"] = s.L2,
                ["latents"] = new JsonArray(s.Latents.Select(l => (JsonNode)l).ToArray()),
            }).ToArray()),
        }).ToArray()),
    };
}
