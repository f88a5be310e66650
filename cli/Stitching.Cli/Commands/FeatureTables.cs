using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Stitching.Contracts.Eval.V1;

namespace Stitching.Cli.Commands;

/// <summary>A FeatureEvaluation as Markdown and as JSON (the report's "features" section, docs/report.md).</summary>
public static class FeatureTables
{
    public static string Markdown(FeatureEvaluation e)
    {
        string F(double v) => double.IsNaN(v) ? "n/a" : v.ToString("F3", CultureInfo.InvariantCulture);
        var md = new StringBuilder();
        md.AppendLine($"Per-latent Pearson correlation of direct logit attribution on A ({e.HookA}) and of the transferred latent on B ({e.HookB}) over {e.Tokens:N0} held-out tokens; " +
                      $"latents split by {e.Sentences} sentences and their syntax-preserving rewrites: {e.Structural} structural, {e.Semantic} semantic, {e.Unclassified} unclassified.\n");
        md.AppendLine("| latents | n | mean | median | 10% | 90% |\n|---|---|---|---|---|---|");
        foreach (var g in e.Groups) md.AppendLine($"| {g.Group} | {g.Latents} | {F(g.Mean)} | {F(g.Median)} | {F(g.Q10)} | {F(g.Q90)} |");
        md.AppendLine();
        return md.ToString();
    }

    public static JsonObject Json(FeatureEvaluation e) => new()
    {
        ["hook_a"] = e.HookA, ["hook_b"] = e.HookB, ["tokens"] = e.Tokens, ["sentences"] = e.Sentences,
        ["structural"] = e.Structural, ["semantic"] = e.Semantic, ["unclassified"] = e.Unclassified,
        ["groups"] = new JsonArray(e.Groups.Select(g => (JsonNode)new JsonObject
        {
            ["group"] = g.Group, ["latents"] = g.Latents, ["mean"] = double.IsNaN(g.Mean) ? null : g.Mean, ["median"] = double.IsNaN(g.Median) ? null : g.Median,
            ["q10"] = double.IsNaN(g.Q10) ? null : g.Q10, ["q90"] = double.IsNaN(g.Q90) ? null : g.Q90,
            ["histogram"] = new JsonArray(g.Histogram.Select(c => (JsonNode)c).ToArray()),
        }).ToArray()),
    };
}
