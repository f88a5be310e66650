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
    public void A_million_words_train_well_under_a_minute()
    {
        // Words from random syllables: tens of thousands of distinct words, Zipf-like reuse.
        var rng = new Random(7);
        string[] syllables = ["ka", "to", "ri", "men", "sul", "a", "e", "qu", "ing", "th", "er", "on", "st", "pl", "ou", "x", "z", "ght"];
        var lexicon = Enumerable.Range(0, 40_000).Select(_ => string.Concat(Enumerable.Range(0, rng.Next(1, 5)).Select(_ => syllables[rng.Next(syllables.Length)]))).ToArray();
        var texts = Enumerable.Range(0, 50_000).Select(_ => string.Join(' ', Enumerable.Range(0, 20).Select(_ => lexicon[(int)(lexicon.Length * Math.Pow(rng.NextDouble(), 3))]))).ToList();
        var trainer = new ByteLevelBpeTrainer(5000);
        var watch = Stopwatch.StartNew();
        trainer.Train(texts);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(45), $"1M words took {watch.Elapsed}");
        Assert.Equal(5000, trainer.Vocab.Count);
    }
}
