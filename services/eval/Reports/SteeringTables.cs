using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Stitching.Contracts.Eval.V1;

namespace Stitching.Eval.Reports;

/// <summary>A SteeringEvaluation as Markdown and as JSON (the report's "steering" section, docs/report.md).</summary>
public static class SteeringTables
{
    private static readonly Dictionary<string, string> Titles = new()
    {
        ["a"] = "A, unsteered", ["a_steered"] = "A, steered (its own v)", ["b"] = "B, unsteered",
        ["b_steered_native"] = "B, steered (its own v)", ["b_steered_transferred"] = "B, steered (A's v through P_up)",
    };

    public static string Markdown(SteeringEvaluation e)
    {
        string F(double v) => v.ToString("F3", CultureInfo.InvariantCulture);
        var md = new StringBuilder();
        md.AppendLine($"Concept: {e.Target} ({e.Dataset}), clamp at {e.HookA} / {e.HookB}; z_A {F(e.ZA)}, z_B {F(e.ZB)}, z_transferred {F(e.ZTransferred)}; " +
                      $"cos(B's own v, transferred v) {F(e.CosineNativeTransferred)}. Judge (bag of words) accuracy on balanced test passages: " +
                      $"{F(e.JudgeAccuracy)} [{F(e.JudgeCiLow)}, {F(e.JudgeCiHigh)}] over {e.JudgeTest}.\n");
        md.AppendLine("| condition | judged as the concept | rate [95% Clopper-Pearson] |\n|---|---|---|");
        foreach (var c in e.Conditions)
            md.AppendLine($"| {Titles.GetValueOrDefault(c.Name, c.Name)} | {c.Successes} / {c.Trials} | {F(c.Rate)} [{F(c.CiLow)}, {F(c.CiHigh)}] |");
        md.AppendLine($"\nClipped relative transfer gap clip(transferred / native, 0, 1): {(double.IsNaN(e.TransferGap) ? "n/a (native rate 0)" : F(e.TransferGap))}.\n");
        foreach (var c in e.Conditions.Where(c => c.Samples.Count > 0))
        {
            md.AppendLine($"Samples, {Titles.GetValueOrDefault(c.Name, c.Name)}:\n");
            foreach (var sample in c.Samples) md.AppendLine($"- {sample.ReplaceLineEndings(" ")}");
            md.AppendLine();
        }
        return md.ToString();
    }

    public static JsonObject Json(SteeringEvaluation e) => new()
    {
        ["dataset"] = e.Dataset, ["target"] = e.Target, ["hook_a"] = e.HookA, ["hook_b"] = e.HookB, ["z_a"] = e.ZA, ["z_b"] = e.ZB, ["z_transferred"] = e.ZTransferred,
        ["cosine_native_transferred"] = e.CosineNativeTransferred, ["judge_accuracy"] = e.JudgeAccuracy, ["judge_ci_low"] = e.JudgeCiLow,
        ["judge_ci_high"] = e.JudgeCiHigh, ["judge_test"] = e.JudgeTest, ["transfer_gap"] = double.IsNaN(e.TransferGap) ? null : e.TransferGap,
        ["conditions"] = new JsonArray(e.Conditions.Select(c => (JsonNode)new JsonObject
        {
            ["name"] = c.Name, ["successes"] = c.Successes, ["trials"] = c.Trials, ["rate"] = c.Rate, ["ci_low"] = c.CiLow, ["ci_high"] = c.CiHigh,
            ["samples"] = new JsonArray(c.Samples.Select(x => (JsonNode)x).ToArray()),
        }).ToArray()),
    };
}
