using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Forward;
using Stitching.Core.Metrics;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;
using Stitching.Core.Text;
using Stitching.Eval.Text;
using Stitching.Corpora.Brown;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Eval.Probes;

/// <summary>How a probe evaluation runs (defaults in <see cref="ProbeSettings.Defaults"/>, stated in docs/metrics.md "Probes").</summary>
public sealed record ProbeSettings(LanguageModelRef ModelA, LanguageModelRef ModelB, string HookA, string HookB, IReadOnlyList<int> Ks,
    int Context, long MaxTokensPerSplit, int MaxPerClass, ulong Seed, IReadOnlyList<double> L2, int BatchSize)
{
    public static class Defaults
    {
        public static readonly IReadOnlyList<int> Ks = [1, 2, 5, 10, 20, 50];
        public static readonly IReadOnlyList<double> L2 = [1e-4, 1e-3, 1e-2, 1e-1, 1];
        public const int Context = 128, MaxPerClass = 2048, BatchSize = 16, MaxTasks = 6;
        public const long MaxTokensPerSplit = 32768;
    }
}

/// <summary>
/// The SAEs and stitch a probe evaluation reads (torch objects, owned by the caller): A's SAE, its transfer to B,
/// B's native SAE; each may be missing, and the probes that need it are skipped. The stitch is its file's tensors.
/// </summary>
public sealed record ProbeModels(SaeParameters? SaeA, SaeParameters? SaeTransferred, SaeParameters? SaeB, IReadOnlyList<HostTensor>? Stitch);

public sealed record ProbeScoreResult(string Probe, int K, long Correct, long Test, double L2, int[] Latents)
{
    public double Accuracy => Test == 0 ? double.NaN : (double)Correct / Test;
    public (double Low, double High) Interval => Intervals.Wilson(Correct, Test);
}

public sealed record ProbeTaskResult(string Name, int Positive, long Train, long Validation, long Test, IReadOnlyList<ProbeScoreResult> Scores);

public sealed record ProbeResult(string Dataset, bool TokenLevel, IReadOnlyList<ProbeTaskResult> Tasks, long TokensA, long TokensB);

/// <summary>
/// Probe transfer (paper section 6). Texts are tokenized by each model (no BOS) and cut into rows of at most
/// Context tokens; rows are drawn per split in a seeded order until the split's token budget is spent (the
/// same rows on both models when they share a tokenizer). One Forward per batch captures the hook; an example
/// is a labelled token (token-level sets) or a row's mean over its tokens (document-level sets), densely and
/// as each SAE's latents (for a row: the mean of the latents). Each task is one class against the rest,
/// balanced per split by drawing as many negatives as positives (at most MaxPerClass each). Probes are
/// <see cref="LogisticProbe"/>s fitted on train, their L2 strength chosen on validation, scored on test.
/// </summary>
public sealed class ProbeEvaluator(TorchWorker worker)
{
    public const string DenseA = "dense_a", DenseB = "dense_b", DenseTransferred = "dense_transferred", SparseA = "sparse_a",
        SparseTransferred = "sparse_transferred", SparseRetrained = "sparse_transferred_retrained", SparseNativeB = "sparse_native_b", SparseRandom = "sparse_random";

    public async Task<ProbeResult> EvaluateAsync(ILanguageModels models, ProbeSet set, ProbeSettings s, ProbeModels m,
        Action<string, int, int>? progress, CancellationToken ct)
    {
        var total = 2 + (set.Classes?.Count ?? ProbeSettings.Defaults.MaxTasks);
        progress?.Invoke("features A", 0, total);
        var a = await FeaturesAsync(models, set, s, s.ModelA, s.HookA, [m.SaeA], ct);
        progress?.Invoke("features B", 1, total);
        var b = await FeaturesAsync(models, set, s, s.ModelB, s.HookB, [m.SaeTransferred, m.SaeB], ct);
        var classes = set.Classes ?? DefaultClasses(a, set.ClassNames.Count);
        total = 2 + classes.Count;
        var tasks = new List<ProbeTaskResult>();
        foreach (var c in classes)
        {
            ct.ThrowIfCancellationRequested();
            var name = set.ClassNames.Count == 2 && set.Classes is null ? $"{set.ClassNames[1]} vs {set.ClassNames[0]}" : $"{set.ClassNames[c]} vs rest";
            progress?.Invoke($"task {name}", 2 + tasks.Count, total);
            tasks.Add(await TaskAsync(name, c, a, b, s, m, ct));
        }
        return new ProbeResult(set.Name, set.TokenLevel, tasks, a.Tokens, b.Tokens);
    }

    /// <summary>With two classes one task (1 vs 0); else the most frequent classes of A's training examples.</summary>
    private static IReadOnlyList<int> DefaultClasses(Features a, int classes)
    {
        if (classes == 2) return [1];
        var counts = new long[classes];
        for (var i = 0; i < a.Labels.Count; i++) if (a.Splits[i] == Split.Train) counts[a.Labels[i]]++;
        return Enumerable.Range(0, classes).Where(c => counts[c] > 0).OrderByDescending(c => counts[c]).ThenBy(c => c)
            .Take(ProbeSettings.Defaults.MaxTasks).ToArray();
    }

    private async Task<ProbeTaskResult> TaskAsync(string name, int positive, Features a, Features b, ProbeSettings s, ProbeModels m, CancellationToken ct)
    {
        var seed = s.Seed ^ (ulong)(positive + 1) * 0x9E3779B97F4A7C15UL;
        var sa = Balanced(a, positive, s.MaxPerClass, seed);
        var sb = Balanced(b, positive, s.MaxPerClass, seed);
        var scores = new List<ProbeScoreResult>();
        var missing = new[] { Split.Train, Split.Validation, Split.Test }.FirstOrDefault(sp => sa[sp].Index.Length == 0 || sb[sp].Index.Length == 0, (Split)(-1));
        if ((int)missing >= 0)
            return new ProbeTaskResult(name, positive, sa[Split.Train].Index.Length, sa[Split.Validation].Index.Length, sa[Split.Test].Index.Length, scores);

        double[][] Dense(Features f, int[] index) => index.Select(i => f.Dense[i].Select(v => (double)v).ToArray()).ToArray();
        double[][] Latents(Features f, int sae, int[] index, int[] latents) => index.Select(i => Gather(f.Latents[sae][i], latents)).ToArray();
        Task<LogisticProbe> FitAsync(Func<int[], double[][]> x, Dictionary<Split, (int[] Index, int[] Y)> split) =>
            worker.RunAsync(() => LogisticProbe.FitSelected(x(split[Split.Train].Index), split[Split.Train].Y, x(split[Split.Validation].Index), split[Split.Validation].Y, s.L2), ct);
        ProbeScoreResult Score(string probe, LogisticProbe p, double[][] test, int[] y, int[] latents) =>
            new(probe, latents.Length, p.Correct(test, y), y.Length, p.L2, latents);

        var denseA = await FitAsync(i => Dense(a, i), sa);
        scores.Add(Score(DenseA, denseA, Dense(a, sa[Split.Test].Index), sa[Split.Test].Y, []));
        var denseB = await FitAsync(i => Dense(b, i), sb);
        scores.Add(Score(DenseB, denseB, Dense(b, sb[Split.Test].Index), sb[Split.Test].Y, []));
        if (m.Stitch is { } stitch)
        {
            // A's probe on T_down(h_B) = h_B P_down + b_down: the direction w P_down^T of the paper, the bias carried through b_down.
            var mapped = await worker.RunAsync(() => Down(stitch, Dense(b, sb[Split.Test].Index)), ct);
            scores.Add(Score(DenseTransferred, denseA, mapped, sb[Split.Test].Y, []));
        }

        if (m.SaeA is { } saeA && m.SaeTransferred is { } saeX)
        {
            var width = (int)Math.Min(saeA.Config.DSae, saeX.Config.DSae);
            var rankA = Rank(a, 0, sa[Split.Train], saeA.Config.DSae);
            var rankB = m.SaeB is { } saeB ? Rank(b, 1, sb[Split.Train], saeB.Config.DSae) : null;
            foreach (var k in s.Ks.Where(k => k <= width))
            {
                var top = rankA[..k];
                var probeA = await FitAsync(i => Latents(a, 0, i, top), sa);
                scores.Add(Score(SparseA, probeA, Latents(a, 0, sa[Split.Test].Index, top), sa[Split.Test].Y, top));
                scores.Add(Score(SparseTransferred, probeA, Latents(b, 0, sb[Split.Test].Index, top), sb[Split.Test].Y, top));
                var retrained = await FitAsync(i => Latents(b, 0, i, top), sb);
                scores.Add(Score(SparseRetrained, retrained, Latents(b, 0, sb[Split.Test].Index, top), sb[Split.Test].Y, top));
                if (rankB is not null && k <= rankB.Length)
                {
                    var topB = rankB[..k];
                    var native = await FitAsync(i => Latents(b, 1, i, topB), sb);
                    scores.Add(Score(SparseNativeB, native, Latents(b, 1, sb[Split.Test].Index, topB), sb[Split.Test].Y, topB));
                }
                var random = RandomLatents((int)saeX.Config.DSae, k, seed ^ (ulong)k * 0xBF58476D1CE4E5B9UL);
                var randomProbe = await FitAsync(i => Latents(b, 0, i, random), sb);
                scores.Add(Score(SparseRandom, randomProbe, Latents(b, 0, sb[Split.Test].Index, random), sb[Split.Test].Y, random));
            }
        }
        return new ProbeTaskResult(name, positive, sa[Split.Train].Index.Length, sa[Split.Validation].Index.Length, sa[Split.Test].Index.Length, scores);
    }

    private static double[][] Down(IReadOnlyList<HostTensor> stitchFile, double[][] x)
    {
        using var scope = NewDisposeScope();
        var stitch = StitchFile.ToStitch(stitchFile, "stitch");
        var t = tensor(x.SelectMany(r => r).ToArray(), [x.Length, x[0].Length], dtype: ScalarType.Float64);
        var y = stitch.Down(t).contiguous();
        var flat = y.data<double>().ToArray();
        var width = (int)y.shape[1];
        return Enumerable.Range(0, x.Length).Select(i => flat.AsSpan(i * width, width).ToArray()).ToArray();
    }

    /// <summary>
    /// Latents by |mean over positives - mean over negatives| of their activation on the balanced training
    /// examples, largest first (ties: lower index).
    /// </summary>
    public static int[] Rank(IReadOnlyList<SparseRow> rows, int[] y, int width)
    {
        var (pos, neg) = (new double[width], new double[width]);
        var (np, nn) = (y.Count(v => v == 1), y.Count(v => v == 0));
        for (var i = 0; i < rows.Count; i++)
        {
            var target = y[i] == 1 ? pos : neg;
            var r = rows[i];
            for (var j = 0; j < r.Index.Length; j++) target[r.Index[j]] += r.Value[j];
        }
        var score = Enumerable.Range(0, width).Select(j => Math.Abs(pos[j] / Math.Max(np, 1) - neg[j] / Math.Max(nn, 1))).ToArray();
        return Enumerable.Range(0, width).OrderByDescending(j => score[j]).ThenBy(j => j).ToArray();
    }

    private static int[] Rank(Features f, int sae, (int[] Index, int[] Y) train, long width) =>
        Rank(train.Index.Select(i => f.Latents[sae][i]).ToList(), train.Y, (int)width);

    private static int[] RandomLatents(int width, int k, ulong seed)
    {
        var rng = new Random((int)(seed ^ seed >> 32));
        return Enumerable.Range(0, width).OrderBy(_ => rng.Next()).Take(k).ToArray();
    }

    private static double[] Gather(SparseRow row, int[] latents)
    {
        var x = new double[latents.Length];
        for (var j = 0; j < latents.Length; j++)
        {
            var at = Array.BinarySearch(row.Index, latents[j]);
            if (at >= 0) x[j] = row.Value[at];
        }
        return x;
    }

    /// <summary>
    /// Per split: every positive example and as many negatives, each drawn in a seeded order, at most
    /// <paramref name="max"/> of each; labels 1 (positive) and 0.
    /// </summary>
    private static Dictionary<Split, (int[] Index, int[] Y)> Balanced(Features f, int positive, int max, ulong seed)
    {
        var result = new Dictionary<Split, (int[] Index, int[] Y)>();
        foreach (var split in new[] { Split.Train, Split.Validation, Split.Test })
        {
            var ids = Enumerable.Range(0, f.Labels.Count).Where(i => f.Splits[i] == split).ToArray();
            var pos = Shuffled(ids.Where(i => f.Labels[i] == positive), f, seed ^ 1);
            var neg = Shuffled(ids.Where(i => f.Labels[i] != positive), f, seed ^ 2);
            var n = Math.Min(Math.Min(pos.Length, neg.Length), max);
            var index = pos[..n].Concat(neg[..n]).ToArray();
            result[split] = (index, index.Select(i => f.Labels[i] == positive ? 1 : 0).ToArray());
        }
        return result;
    }

    /// <summary>Examples in an order set by the seed and each example's key (its text, row and token), so two models that tokenize alike draw alike.</summary>
    private static int[] Shuffled(IEnumerable<int> ids, Features f, ulong seed) =>
        ids.OrderBy(i => SeededDraw.Mix(seed ^ f.Keys[i])).ThenBy(i => i).ToArray();

    /// <summary>A latent vector with its nonzero entries only, indices ascending.</summary>
    public sealed record SparseRow(int[] Index, float[] Value);

    /// <summary>One model's examples: label, split, key, dense vector and each SAE's latents.</summary>
    private sealed class Features
    {
        public List<int> Labels { get; } = [];
        public List<Split> Splits { get; } = [];
        public List<ulong> Keys { get; } = [];
        public List<float[]> Dense { get; } = [];
        public List<SparseRow>[] Latents { get; init; } = [];
        public long Tokens { get; set; }
    }

    private sealed record Row(int Text, int Chunk, Split Split, int[] Ids, int[] Labels);

    private async Task<Features> FeaturesAsync(ILanguageModels models, ProbeSet set, ProbeSettings s, LanguageModelRef model, string hook,
        SaeParameters?[] saes, CancellationToken ct)
    {
        var tokenized = await models.TokenizeAsync(model, set.Texts.Select(t => t.Text).ToList(), ct);
        var rows = new List<Row>();
        for (var i = 0; i < tokenized.Count; i++)
        {
            var text = set.Texts[i];
            var ids = tokenized[i].Ids;
            var labels = set.TokenLevel ? SpanLabels.Assign(text.Text, tokenized[i].Offsets, text.Spans) : null;
            for (var c = 0; c * s.Context < ids.Length; c++)
            {
                var range = new Range(c * s.Context, Math.Min(ids.Length, (c + 1) * s.Context));
                var rowLabels = labels is null ? [text.Label] : labels[range];
                if (labels is not null && rowLabels.All(l => l < 0)) continue;
                rows.Add(new Row(i, c, text.Split, ids[range], rowLabels));
            }
        }
        var chosen = new[] { Split.Train, Split.Validation, Split.Test }
            .SelectMany(split => SeededDraw.WithinBudget(rows.Where(r => r.Split == split), r => SeededDraw.Key(r.Text, r.Chunk), r => r.Ids.Length, s.MaxTokensPerSplit, s.Seed))
            .ToList();
        var f = new Features { Latents = saes.Select(_ => new List<SparseRow>()).ToArray() };
        foreach (var batch in chosen.GroupBy(r => r.Ids.Length).SelectMany(g => g.Chunk(s.BatchSize)))
        {
            var run = await models.ForwardAsync(new ForwardCall(model, batch.Select(r => r.Ids).ToArray(), Capture: hook), ct);
            var h = run.Captured ?? throw StitchingException.FailedPrecondition($"hook: {model.Model} returned no capture of {hook}.", "hook");
            foreach (var sae in saes)
                if (sae is not null && sae.Config.DIn != h.Shape[^1])
                    throw StitchingException.FailedPrecondition($"sae: an SAE reads width {sae.Config.DIn} but {hook} of {model.Model} has width {h.Shape[^1]}.", "sae");
            await worker.RunAsync(() => { Collect(f, batch, h, saes, set.TokenLevel); return 0; }, ct);
            f.Tokens += batch.Sum(r => (long)r.Ids.Length);
        }
        return f;
    }

    private static void Collect(Features f, Row[] batch, HostTensor captured, SaeParameters?[] saes, bool tokenLevel)
    {
        using var scope = NewDisposeScope();
        var h = TorchTensors.ToTorchFloat(captured, "captured"); // [b, T, d]
        for (var r = 0; r < batch.Length; r++)
        {
            var row = batch[r];
            var x = h[r];                                                   // [T, d]
            var positions = tokenLevel ? Enumerable.Range(0, row.Labels.Length).Where(t => row.Labels[t] >= 0).ToArray() : null;
            var dense = tokenLevel ? x.index_select(0, tensor(positions!.Select(p => (long)p).ToArray())) : x.mean([0], keepdim: true);
            var denseHost = dense.contiguous().data<float>().ToArray();
            var d = (int)dense.shape[1];
            var n = (int)dense.shape[0];
            for (var e = 0; e < n; e++)
            {
                f.Labels.Add(tokenLevel ? row.Labels[positions![e]] : row.Labels[0]);
                f.Splits.Add(row.Split);
                f.Keys.Add((ulong)row.Text << 40 | (ulong)row.Chunk << 20 | (uint)(tokenLevel ? positions![e] : 0));
                f.Dense.Add(denseHost.AsSpan(e * d, d).ToArray());
            }
            for (var k = 0; k < saes.Length; k++)
            {
                if (saes[k] is not { } sae) { for (var e = 0; e < n; e++) f.Latents[k].Add(new SparseRow([], [])); continue; }
                var z = sae.Encode(x);                                      // [T, m]
                var pooled = tokenLevel ? z.index_select(0, tensor(positions!.Select(p => (long)p).ToArray())) : z.mean([0], keepdim: true);
                var values = pooled.contiguous().data<float>().ToArray();
                var m = (int)pooled.shape[1];
                for (var e = 0; e < n; e++)
                {
                    var (index, value) = (new List<int>(), new List<float>());
                    for (var j = 0; j < m; j++)
                        if (values[e * m + j] is var v && v != 0) { index.Add(j); value.Add(v); }
                    f.Latents[k].Add(new SparseRow(index.ToArray(), value.ToArray()));
                }
            }
        }
    }
}
