using System.Diagnostics;
using Stitching.Models.Tokenization;
using Stitching.Tests.Fixtures;
using static Stitching.Tests.Tokenization.TokenizerFixtures;

namespace Stitching.Tests.Tokenization;

[Trait("Category", "Unit")]
public class ByteLevelBpeTrainerTests
{
    [Fact]
    public void Training_is_deterministic_and_hits_the_vocab_size()
    {
        using var dir = new TempDir();
        var paths = new[] { Path.Combine(dir.Path, "a.json"), Path.Combine(dir.Path, "b.json") };
        foreach (var path in paths)
        {
            var trainer = new ByteLevelBpeTrainer(500, ["<|endoftext|>", "<|padding|>"]);
            trainer.Train(TrainingTexts());
            trainer.Save(path);
            Assert.Equal(500, trainer.Vocab.Count);
            Assert.Equal(500 - 258, trainer.Merges.Count);
            Assert.Equal(["<|endoftext|>", "<|padding|>"], trainer.Vocab.Take(2));
        }
        Assert.Equal(File.ReadAllBytes(paths[0]), File.ReadAllBytes(paths[1]));
        Assert.Equal(500, HfTokenizer.Load(paths[0]).VocabSize);
    }

    [Fact]
    public void First_merge_is_the_most_frequent_pair_with_ordinal_tie_break()
    {
        // "ab" x3 and "cd" x3 tie; "ab" sorts first. Then "cd", then "Ġab"... by frequency.
        var trainer = new ByteLevelBpeTrainer(256 + 1 + 2, ["<|endoftext|>"]);
        trainer.Train(["cd ab cd ab cd ab"]);
        Assert.Equal(("a", "b"), trainer.Merges[0]);
        Assert.Equal(("c", "d"), trainer.Merges[1]);
    }

    [Fact]
    public void Saved_file_loads_in_rust_with_identical_ids()
    {
        using var dir = new TempDir();
        var path = Path.Combine(dir.Path, "tokenizer.json");
        var trainer = new ByteLevelBpeTrainer(700);
        trainer.Train(TrainingTexts());
        trainer.Save(path);
        var tokenizer = HfTokenizer.Load(path);
        foreach (var text in Corpus.Concat(Probes))
            Assert.Equal(OracleIds(path, text), tokenizer.Encode(text).Ids);
    }

    [Fact]
    public void A_few_hundred_thousand_words_train_in_seconds()
    {
        var rng = new Random(7);
        var words = Corpus.SelectMany(t => t.Split(' ')).ToArray();
        var texts = Enumerable.Range(0, 20_000).Select(_ => string.Join(' ', Enumerable.Range(0, 15).Select(_ => words[rng.Next(words.Length)] + (rng.Next(50) == 0 ? rng.Next(1000).ToString() : ""))));
        var trainer = new ByteLevelBpeTrainer(2000);
        var watch = Stopwatch.StartNew();
        trainer.Train(texts);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), $"300k words took {watch.Elapsed}");
    }
}
