using System.Text.Json;
using Stitching.Models.Tokenization;
using Stitching.Corpora.Brown;

namespace Stitching.Zoo.Labels;

/// <summary>Counts per class of the written labelled sets (summary.json).</summary>
public sealed record LabelSummary(Dictionary<string, long> PosTokens, Dictionary<string, Dictionary<string, int>> GenreDocuments,
                                  int PosSentences, int RewriteSentences, int RewritesPerSentence);

/// <summary>
/// Writes the labelled sets of a family to a folder: genre.jsonl (document-level genre, all 500 documents
/// with their split), pos.jsonl (token-level universal POS of every validation and test sentence),
/// rewrites.jsonl (syntax-preserving rewrites of every test sentence) and summary.json (counts per class).
/// </summary>
public static class LabelledSets
{
    private static readonly JsonSerializerOptions Json = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static LabelSummary Write(string dir, BrownCorpus corpus, HfTokenizer tokenizer, int rewritesPerSentence, int seed)
    {
        Directory.CreateDirectory(dir);
        var split = corpus.Documents.ToDictionary(d => d.Id, d => BrownSplit.Of(d, corpus.Documents));
        var genres = new Dictionary<string, Dictionary<string, int>>();
        using (var w = new StreamWriter(Path.Combine(dir, "genre.jsonl")))
            foreach (var d in corpus.Documents)
            {
                var name = Genres.All[Genres.Id(d.Genre)].Name;
                var perSplit = genres.TryGetValue(name, out var g) ? g : genres[name] = [];
                perSplit[BrownSplit.Name(split[d.Id])] = perSplit.GetValueOrDefault(BrownSplit.Name(split[d.Id])) + 1;
                w.WriteLine(JsonSerializer.Serialize(new { doc = d.Id, split = BrownSplit.Name(split[d.Id]), genre = Genres.Id(d.Genre), genre_name = name }, Json));
            }

        var pos = UniversalPos.Classes.ToDictionary(c => c, _ => 0L);
        var posSentences = 0;
        using (var w = new StreamWriter(Path.Combine(dir, "pos.jsonl")))
            foreach (var d in corpus.Documents.Where(d => split[d.Id] != Split.Train))
                for (var s = 0; s < d.Sentences.Count; s++)
                {
                    var row = PosLabels.Label(d, BrownSplit.Name(split[d.Id]), s, tokenizer);
                    foreach (var l in row.Labels.Where(l => l >= 0)) pos[UniversalPos.Classes[l]]++;
                    posSentences++;
                    w.WriteLine(JsonSerializer.Serialize(row, Json));
                }

        var rewriter = new Rewrites(corpus.Documents.Where(d => split[d.Id] == Split.Train), seed);
        var rewriteSentences = 0;
        using (var w = new StreamWriter(Path.Combine(dir, "rewrites.jsonl")))
            foreach (var d in corpus.Documents.Where(d => split[d.Id] == Split.Test))
                for (var s = 0; s < d.Sentences.Count; s++)
                {
                    var set = rewriter.Rewrite(d, s, rewritesPerSentence);
                    if (set.Replaced.Length == 0) continue;
                    rewriteSentences++;
                    w.WriteLine(JsonSerializer.Serialize(set, Json));
                }

        var summary = new LabelSummary(pos, genres, posSentences, rewriteSentences, rewritesPerSentence);
        File.WriteAllText(Path.Combine(dir, "summary.json"), JsonSerializer.Serialize(summary, new JsonSerializerOptions(Json) { WriteIndented = true }));
        return summary;
    }
}
