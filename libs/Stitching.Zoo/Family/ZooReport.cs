using System.Text.Json;

namespace Stitching.Zoo.Family;

/// <summary>
/// report.json of a built family: tokenizer and token counts, the count baselines on the test windows,
/// and each member's card. Cross-entropies are nats per token over the same held-out targets.
/// </summary>
public sealed record ZooReport(string Family, string SpecHash, int VocabSize, int Context, long TrainTokens, long ValidationTokens, long TestTokens,
                               double UnigramK, double UnigramTestLoss, double BigramK, double BigramTestLoss, IReadOnlyList<ZooModelCard> Models)
{
    public void Save(string path) => File.WriteAllText(path, JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>The measured table as markdown (docs/zoo.md and the CLI's summary).</summary>
    public string Markdown()
    {
        var sb = new System.Text.StringBuilder();
        sb.AppendLine($"family `{Family}` (spec {SpecHash}): vocabulary {VocabSize}, context {Context}; tokens train {TrainTokens:N0}, validation {ValidationTokens:N0}, test {TestTokens:N0}");
        sb.AppendLine();
        sb.AppendLine("| model | d / layers / heads | parameters | training tokens | steps | wall time | CPU time | tokens/s (wall) | test CE (nats/token) |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|");
        sb.AppendLine($"| unigram (add-k, k={UnigramK:G2}) | | | {TrainTokens:N0} | | | | | {UnigramTestLoss:F3} |");
        sb.AppendLine($"| bigram (add-k, k={BigramK:G2}) | | | {TrainTokens:N0} | | | | | {BigramTestLoss:F3} |");
        foreach (var m in Models)
            sb.AppendLine($"| {m.Name} | {m.Width} / {m.Layers} / {m.Heads} | {m.Parameters:N0} | {m.TrainingTokens:N0} | {m.Steps} | {m.WallSeconds:F0} s | {m.CpuSeconds:F0} s | {m.TokensPerSecond:F0} | {m.TestLoss:F3} |");
        return sb.ToString();
    }
}
