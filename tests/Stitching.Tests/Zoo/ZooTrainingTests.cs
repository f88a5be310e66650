using Stitching.Models.Tokenization;
using Stitching.Tests.Fixtures;
using Stitching.Zoo.Family;
using Stitching.Zoo.Training;

namespace Stitching.Tests.Zoo;

/// <summary>The trainer on a tiny GPT-NeoX over the repository's own text: determinism, learning, exact reload.</summary>
[Trait("Category", "Integration")]
public class ZooTrainingTests
{
    private static readonly NeoXSize Tiny = new("t", 16, 1, 2);

    private static (TokenWindows Data, int Vocab) Data()
    {
        var trainer = new ByteLevelBpeTrainer(300);
        trainer.Train(TinyModels.Documents());
        var tokenizer = HfTokenizer.FromJson(trainer.ToJson());
        var ids = TinyModels.Documents().SelectMany(d => tokenizer.Encode(d, addSpecialTokens: false).Ids.Append(0)).ToArray();
        return (new TokenWindows(ids, 32), tokenizer.VocabSize);
    }

    private static TrainingSpec Spec(int tokens) => new(Seed: 7, Batch: 4, Tokens: tokens, PeakLr: 1e-2, WarmupSteps: 2, Threads: 2);

    [Fact]
    public void Same_seed_and_threads_give_byte_identical_weights()
    {
        var (data, vocab) = Data();
        using var dir = new TempDir("zoo-det");
        byte[] Run(string name)
        {
            using var model = Trainer.Train(Tiny, vocab, data, Spec(4 * 32 * 6));
            model.Save(Path.Combine(dir.Path, name), data.Context);
            return File.ReadAllBytes(Path.Combine(dir.Path, name, "model.safetensors"));
        }
        var a = Run("a");
        var b = Run("b");
        Assert.Equal(a, b);
        using var init = new TrainableNeoX(Tiny, vocab, 7);
        init.Save(Path.Combine(dir.Path, "init"), data.Context);
        Assert.NotEqual(a, File.ReadAllBytes(Path.Combine(dir.Path, "init", "model.safetensors")));   // training changed the weights
    }

    [Fact]
    public void Training_lowers_the_loss_below_uniform()
    {
        var (data, vocab) = Data();
        var losses = new List<double>();
        using var model = Trainer.Train(Tiny, vocab, data, Spec(4 * 32 * 60), new SyncProgress(p => losses.Add(p.Loss)));
        Assert.Equal(60, losses.Count);
        Assert.InRange(losses[0], Math.Log(vocab) - 0.5, Math.Log(vocab) + 0.5);   // initial loss near ln V
        Assert.True(losses.TakeLast(5).Average() < losses[0] - 1.0, $"loss went {losses[0]:F3} -> {losses.TakeLast(5).Average():F3}");
        Assert.True(Trainer.HeldOutLoss(model.Forward, data) < Math.Log(vocab) - 1.0);
    }

    [Fact]
    public void Reloaded_checkpoint_gives_identical_logits_and_hf_layout()
    {
        var (data, vocab) = Data();
        using var model = Trainer.Train(Tiny, vocab, data, Spec(4 * 32 * 5));
        using var dir = new TempDir("zoo-reload");
        model.Save(dir.Path, data.Context);
        Assert.Equal(0.0, ZooBuilder.ReloadDifference(model, dir.Path, data));
        using var ck = Stitching.Models.Checkpoint.Open(dir.Path);
        Assert.Equal("gpt_neox", ck.ModelType);
        Assert.Contains("gpt_neox.layers.0.attention.query_key_value.weight", ck.TensorNames);
        Assert.Contains("embed_out.weight", ck.TensorNames);
        var shapes = ck.WeightShapes().ToDictionary(w => w.Name, w => w.Shape);
        Assert.Equal([48L, 16L], shapes["gpt_neox.layers.0.attention.query_key_value.weight"]);
        Assert.Equal(Tiny.Parameters(vocab), shapes.Values.Sum(s => s.Aggregate(1L, (x, y) => x * y)));
    }

    private sealed class SyncProgress(Action<TrainProgress> report) : IProgress<TrainProgress>
    {
        public void Report(TrainProgress value) => report(value);
    }
}
