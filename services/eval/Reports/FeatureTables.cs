using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Stitching.Contracts.Eval.V1;

namespace Stitching.Eval.Reports;

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
        if (e.Entropy is { } h)
        {
            md.AppendLine($"Entropy latents (docs/metrics.md \"Entropy latents\"): the fraction of each decoder row's squared norm in the unembedding's near-null space, " +
                          $"the span of W_U's {h.SubspaceA} (A) and {h.SubspaceB} (B) smallest singular directions (2% of the width; a random direction puts about 2% of its norm there).\n");
            md.AppendLine("| latents | fraction on A | fraction of the twin on B |\n|---|---|---|");
            md.AppendLine($"| all | {F(h.MeanA)} | {F(h.MeanB)} |");
            md.AppendLine($"| entropy latents of A (fraction >= {F(h.Threshold)}): {h.LatentsA}, of which {h.KeptB} stay so on B | {F(h.EntropyMeanA)} | {F(h.EntropyMeanB)} |");
            md.AppendLine($"| top 1% by fraction on A | {F(h.TopMeanA)} | {F(h.TopMeanB)} |");
            md.AppendLine($"| random SAE | {F(h.RandomMeanA)} | {F(h.RandomMeanB)} |");
            md.AppendLine($"\nPearson correlation over latents of the fraction on A and on B: {F(h.Correlation)}. Largest on A: " +
                          string.Join(", ", h.Top.Select(t => $"#{t.Latent} {F(t.FractionA)} -> {F(t.FractionB)}")) + ".\n");
        }
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
        ["entropy"] = e.Entropy is not { } h ? null : new JsonObject
        {
            ["subspace_a"] = h.SubspaceA, ["subspace_b"] = h.SubspaceB, ["threshold"] = h.Threshold, ["latents_a"] = h.LatentsA, ["kept_b"] = h.KeptB,
            ["mean_a"] = N(h.MeanA), ["mean_b"] = N(h.MeanB), ["entropy_mean_a"] = N(h.EntropyMeanA), ["entropy_mean_b"] = N(h.EntropyMeanB),
            ["top_mean_a"] = N(h.TopMeanA), ["top_mean_b"] = N(h.TopMeanB), ["random_mean_a"] = N(h.RandomMeanA), ["random_mean_b"] = N(h.RandomMeanB),
            ["correlation"] = N(h.Correlation),
            ["top"] = new JsonArray(h.Top.Select(t => (JsonNode)new JsonObject { ["latent"] = t.Latent, ["fraction_a"] = t.FractionA, ["fraction_b"] = t.FractionB }).ToArray()),
        },
    };

    private static double? N(double v) => double.IsNaN(v) ? null : v;
}
