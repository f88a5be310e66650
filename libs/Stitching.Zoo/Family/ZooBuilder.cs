using Stitching.Models.Families;
using Stitching.Models.Runtime;
using Stitching.Models.Tokenization;
using Stitching.Corpora.Brown;
using Stitching.Zoo.Evaluation;
using Stitching.Zoo.Labels;
using Stitching.Zoo.Training;
using static TorchSharp.torch;

namespace Stitching.Zoo.Family;

/// <summary>Where a build is: the fraction of the estimated work done and what it is doing.</summary>
public sealed record BuildProgress(double Fraction, string Detail);

/// <summary>
/// Builds a family end to end: tokenizer on the training split, token streams, count baselines, labelled
/// sets, then each size (skipped when its zoo.json already carries the spec hash), saved as a Hugging Face
/// checkpoint in the model store and checked by reloading it through the runtime.
/// </summary>
public sealed class ZooBuilder(FamilySpec spec, ZooPaths paths, BrownCorpus corpus)
{
    private const double PrepareShare = 0.05;

    public ZooReport Build(IProgress<BuildProgress>? progress = null, CancellationToken ct = default)
    {
        Directory.CreateDirectory(paths.FamilyDir(spec));
        void Report(double f, string detail) => progress?.Report(new BuildProgress(f, detail));
        Report(0, "tokenizer");
        var train = BrownSplit.Documents(corpus, Split.Train);
        var tokenizerPath = paths.TokenizerPath(spec);
        if (!File.Exists(tokenizerPath))
        {
            var trainer = new ByteLevelBpeTrainer(spec.VocabSize);
            trainer.Train(train.Select(d => d.Render().Text));
            trainer.Save(tokenizerPath + ".tmp");
            File.Move(tokenizerPath + ".tmp", tokenizerPath, overwrite: true);
        }
        var tokenizer = HfTokenizer.Load(tokenizerPath);
        Report(PrepareShare * 0.4, "encoding the splits");
        var streams = Enum.GetValues<Split>().ToDictionary(s => s, s => Encode(tokenizer, BrownSplit.Documents(corpus, s)));
        var windows = streams.ToDictionary(p => p.Key, p => new TokenWindows(p.Value, spec.Context));

        Report(PrepareShare * 0.6, "count baselines");
        var ngrams = new NgramBaselines(streams[Split.Train], tokenizer.VocabSize);
        var uniK = NgramBaselines.BestK(k => ngrams.UnigramLoss(windows[Split.Validation], k));
        var biK = NgramBaselines.BestK(k => ngrams.BigramLoss(windows[Split.Validation], k));

        Report(PrepareShare * 0.7, "labelled sets");
        if (!File.Exists(Path.Combine(paths.LabelsDir(spec), "summary.json")))
            LabelledSets.Write(paths.LabelsDir(spec), corpus, tokenizer, spec.RewritesPerSentence, spec.Training.Seed);

        var costs = spec.Sizes.Select(s => (double)s.Parameters(tokenizer.VocabSize)).ToArray();
        var done = 0.0;
        var cards = new List<ZooModelCard>();
        for (var i = 0; i < spec.Sizes.Count; i++)
        {
            var size = spec.Sizes[i];
            var share = (1 - PrepareShare) * costs[i] / costs.Sum();
            var start = PrepareShare + (1 - PrepareShare) * done / costs.Sum();
            if (!ZooCatalog.IsBuilt(paths, spec, size))
                TrainOne(size, tokenizer.VocabSize, windows, tokenizerPath,
                    new Progress<TrainProgress>(p => Report(start + share * p.Step / p.Steps, $"{spec.ModelName(size)} step {p.Step}/{p.Steps} loss {p.Loss:F3}")), ct);
            cards.Add(ZooModelCard.Load(paths.ModelDir(spec, size))!);
            done += costs[i];
        }
        var report = new ZooReport(spec.Name, spec.Hash, tokenizer.VocabSize, spec.Context,
            streams[Split.Train].Length, streams[Split.Validation].Length, streams[Split.Test].Length,
            uniK, ngrams.UnigramLoss(windows[Split.Test], uniK), biK, ngrams.BigramLoss(windows[Split.Test], biK), cards);
        report.Save(paths.ReportPath(spec));
        Report(1, "done");
        return report;
    }

    /// <summary>Documents rendered, encoded and joined, each followed by the end-of-text id.</summary>
    public static int[] Encode(HfTokenizer tokenizer, IEnumerable<BrownDocument> docs)
    {
        var eos = tokenizer.EosId ?? 0;
        return docs.SelectMany(d => tokenizer.Encode(d.Render().Text, addSpecialTokens: false).Ids.Append(eos)).ToArray();
    }

    private void TrainOne(NeoXSize size, int vocab, Dictionary<Split, TokenWindows> windows, string tokenizerPath,
                          IProgress<TrainProgress> progress, CancellationToken ct)
    {
        var dir = paths.ModelDir(spec, size);
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var cpu = System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime;
        double lastLoss = double.NaN;
        using var model = Trainer.Train(size, vocab, windows[Split.Train], spec.Training,
            new Progress<TrainProgress>(p => { lastLoss = p.Loss; progress.Report(p); }), ct);
        var seconds = clock.Elapsed.TotalSeconds;
        var cpuSeconds = (System.Diagnostics.Process.GetCurrentProcess().TotalProcessorTime - cpu).TotalSeconds;
        model.Save(dir, spec.Context);
        File.Copy(tokenizerPath, Path.Combine(dir, "tokenizer.json"), overwrite: true);
        var steps = spec.Training.Steps(spec.Context);
        var tokens = (long)steps * spec.Training.Batch * spec.Context;
        var card = new ZooModelCard(spec.Name, spec.ModelName(size), spec.Hash, size.Width, size.Layers, size.Heads, model.ParameterCount,
            tokens, steps, seconds, cpuSeconds, tokens / seconds, lastLoss,
            Trainer.HeldOutLoss(model.Forward, windows[Split.Validation]), Trainer.HeldOutLoss(model.Forward, windows[Split.Test]),
            ReloadDifference(model, dir, windows[Split.Test]), spec.Training.Seed, spec.Training.Threads);
        card.Save(dir);
    }

    /// <summary>Largest |logit difference| between the trained model and its checkpoint reloaded through the runtime, on test windows.</summary>
    public static double ReloadDifference(TrainableNeoX model, string dir, TokenWindows data)
    {
        using var reloaded = ModelFamilies.Load(dir);
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var (inputs, _) = data.Batch(Enumerable.Range(0, Math.Min(4, data.Count)).ToList());
        var expected = model.Forward(inputs);
        var actual = reloaded.Forward(new ForwardRequest { Ids = inputs, Logits = true }).Logits!;
        return (expected - actual).abs().max().item<float>();
    }
}
