using System.Text.RegularExpressions;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Forward;
using Stitching.Core.Metrics;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;
using Stitching.Corpora.Brown;
using Stitching.Eval.Probes;
using Stitching.Eval.Text;
using static TorchSharp.torch;

namespace Stitching.Eval.Steering;

/// <summary>How a steering evaluation runs (defaults in <see cref="Defaults"/>, stated in docs/metrics.md "Steering").</summary>
public sealed record SteeringSettings(LanguageModelRef ModelA, LanguageModelRef ModelB, string HookA, string HookB, int Target,
    int Prompts, int PromptWords, int NewTokens, int Context, long MaxTokens, ulong Seed)
{
    public static class Defaults
    {
        public const int Target = 1, Prompts = 48, PromptWords = 12, NewTokens = 32, Context = 128, JudgeWords = 500, PassageWords = 24, Samples = 3;
        public const long MaxTokens = 262144;
        public static readonly IReadOnlyList<double> JudgeL2 = [1e-3, 1e-2, 1e-1, 1];
    }
}

public sealed record SteeringConditionResult(string Name, long Successes, long Trials, IReadOnlyList<string> Samples)
{
    public double Rate => Trials == 0 ? double.NaN : (double)Successes / Trials;
    public (double Low, double High) Interval => Intervals.ClopperPearson(Successes, Trials);
}

public sealed record SteeringResult(string Dataset, string Target, float[] VectorA, float[] VectorB, float[] VectorTransferred,
    double ZA, double ZB, double ZTransferred, double CosineNativeTransferred, long JudgeCorrect, long JudgeTest,
    IReadOnlyList<SteeringConditionResult> Conditions, long TokensA, long TokensB)
{
    public double JudgeAccuracy => JudgeTest == 0 ? double.NaN : (double)JudgeCorrect / JudgeTest;

    /// <summary>clip(rate(transferred) / rate(native on B), 0, 1); NaN when the native rate is 0.</summary>
    public double TransferGap
    {
        get
        {
            var native = Conditions.First(c => c.Name == SteeringEvaluator.BNative).Rate;
            var transferred = Conditions.First(c => c.Name == SteeringEvaluator.BTransferred).Rate;
            return native > 0 ? Math.Clamp(transferred / native, 0, 1) : double.NaN;
        }
    }
}

/// <summary>
/// Steering-vector transfer (paper section 7). Directions: the train split's texts, tokenized without BOS
/// and cut into rows of at most Context tokens (drawn in a seeded order within the token budget), run
/// through Forward capturing the hook; mu_c is the mean of the hook over every token of class c's rows,
/// v = normalise(mu_target - mu_baseline) and z = &lt;mu_target, v&gt; (the mean projection of target tokens).
/// Transfer: v' = normalise(v P_up), z' = &lt;mu_target(B), v'&gt;. Judge: presence of the most frequent words of
/// the validation split's passages, a <see cref="LogisticProbe"/> fitted on its even documents and its
/// strength chosen on the odd ones, scored on the test split's passages. Prompts: the first words of
/// baseline-class test passages; each condition generates greedily and counts continuations the judge calls
/// the target.
/// </summary>
public sealed class SteeringEvaluator(TorchWorker worker)
{
    public const string A = "a", ASteered = "a_steered", B = "b", BNative = "b_steered_native", BTransferred = "b_steered_transferred";
    private static readonly Regex Word = new("[a-z]+", RegexOptions.Compiled);

    public async Task<SteeringResult> EvaluateAsync(ILanguageModels models, ProbeSet set, SteeringSettings s, IReadOnlyList<HostTensor> stitch,
        Action<string, int, int>? progress, CancellationToken ct)
    {
        CheckData(set, s.Target);
        if (s.Target >= set.ClassNames.Count) throw StitchingException.InvalidArgument("target", $"{s.Target} is not a class of the set (0..{set.ClassNames.Count - 1}).");
        progress?.Invoke("directions A", 0, 8);
        var (meanA, tokensA) = await ClassMeansAsync(models, set, s, s.ModelA, s.HookA, ct);
        progress?.Invoke("directions B", 1, 8);
        var (meanB, tokensB) = await ClassMeansAsync(models, set, s, s.ModelB, s.HookB, ct);
        var d = await worker.RunAsync(() =>
        {
            var (vA, zA) = Direction(meanA.Target, meanA.Baseline);
            var (vB, zB) = Direction(meanB.Target, meanB.Baseline);
            using var scope = NewDisposeScope();
            var st = StitchFile.ToStitch(stitch, "stitch");
            var moved = st.MoveDirection(tensor(vA.Select(x => (double)x).ToArray(), dtype: ScalarType.Float64), StitchDirection.Up);
            var vX = (moved / moved.norm()).data<double>().ToArray();
            var zX = Dot(meanB.Target, vX);
            var cos = Dot(vB.Select(x => (double)x).ToArray(), vX);
            return (vA, zA, vB, zB, vX: vX.Select(x => (float)x).ToArray(), zX, cos);
        }, ct);

        progress?.Invoke("judge", 2, 8);
        var judge = await worker.RunAsync(() => TrainJudge(set, s), ct);
                var prompts = Prompts(set, s);
        var conditions = new List<SteeringConditionResult>();
        async Task Run(string name, LanguageModelRef model, StreamEdit? edit)
        {
            progress?.Invoke($"generations {name}", 3 + conditions.Count, 8);
            var texts = new List<string>();
            var ids = await models.TokenizeAsync(model, prompts, ct);
            long successes = 0;
            for (var i = 0; i < prompts.Count; i++)
            {
                if (ids[i].Ids.Length == 0) continue;
                var g = await models.GenerateAsync(new GenerationCall(model, ids[i].Ids, s.NewTokens, edit), ct);
                if (judge.Says(g.Text)) successes++;
                if (texts.Count < SteeringSettings.Defaults.Samples) texts.Add($"{prompts[i]} → {g.Text}");
            }
            conditions.Add(new SteeringConditionResult(name, successes, ids.Count(t => t.Ids.Length > 0), texts));
        }
        HostTensor Vec(float[] v) => HostTensor.FromFloats("direction", v, v.Length);
        await Run(A, s.ModelA, null);
        await Run(ASteered, s.ModelA, new ClampEdit(s.HookA, Vec(d.vA), d.zA));
        await Run(B, s.ModelB, null);
        await Run(BNative, s.ModelB, new ClampEdit(s.HookB, Vec(d.vB), d.zB));
        await Run(BTransferred, s.ModelB, new ClampEdit(s.HookB, Vec(d.vX), d.zX));
        return new SteeringResult(set.Name, set.ClassNames[s.Target], d.vA, d.vB, d.vX, d.zA, d.zB, d.zX, d.cos, judge.Correct, judge.Test,
            conditions, tokensA, tokensB);
    }

    /// <summary>
    /// What the data must hold, checked before any work: train texts of both sides (the directions), validation
    /// texts of both sides among its even and among its odd documents (the judge's fit and choice), baseline test
    /// texts (the prompts).
    /// </summary>
    public static void CheckData(ProbeSet set, int target)
    {
        if (set.TokenLevel) throw StitchingException.InvalidArgument("dataset", "steering needs document-level labels (a class per text), not spans.");
        bool Has(Func<ProbeText, bool> p) => set.Texts.Any(p);
        if (!Has(t => t.Split == Split.Train && t.Label == target) || !Has(t => t.Split == Split.Train && t.Label != target))
            throw StitchingException.FailedPrecondition("dataset: the train split needs texts of the target class and of the others (the directions are their mean difference).", "dataset");
        var validation = set.Texts.Where(t => t.Split == Split.Validation).ToList();
        foreach (var parity in new[] { 0, 1 })
        {
            var half = validation.Where((_, i) => i % 2 == parity).ToList();
            if (!half.Any(t => t.Label == target) || !half.Any(t => t.Label != target))
                throw StitchingException.FailedPrecondition($"dataset: the validation split's {(parity == 0 ? "even" : "odd")} documents need texts of the target class and of the others (the judge is fitted on the even ones, its strength chosen on the odd ones).", "dataset");
        }
        if (!Has(t => t.Split == Split.Test && t.Label != target))
            throw StitchingException.FailedPrecondition("dataset: the test split needs texts of the baseline classes (the prompts are their first words).", "dataset");
    }

    private static double Dot(double[] a, double[] b) => a.Zip(b).Sum(p => p.First * p.Second);

    /// <summary>v = normalise(mu_t - mu_b), z = &lt;mu_t, v&gt;.</summary>
    public static (float[] V, double Z) Direction(double[] target, double[] baseline)
    {
        var diff = target.Zip(baseline).Select(p => p.First - p.Second).ToArray();
        var norm = Math.Sqrt(diff.Sum(x => x * x));
        if (!(norm > 0)) throw StitchingException.FailedPrecondition("dataset: the target and baseline classes have the same mean at the hook; there is no direction to steer along.", "dataset");
        var v = diff.Select(x => x / norm).ToArray();
        return (v.Select(x => (float)x).ToArray(), Dot(target, v));
    }

    /// <summary>Token-weighted means of the hook over the train split's target and baseline rows.</summary>
    private async Task<((double[] Target, double[] Baseline) Means, long Tokens)> ClassMeansAsync(ILanguageModels models, ProbeSet set, SteeringSettings s,
        LanguageModelRef model, string hook, CancellationToken ct)
    {
        var train = set.Texts.Select((t, i) => (t, i)).Where(p => p.t.Split == Split.Train).ToList();
        var tokenized = await models.TokenizeAsync(model, train.Select(p => p.t.Text).ToList(), ct);
        var rows = new List<(int[] Ids, bool Target, ulong Key)>();
        for (var j = 0; j < train.Count; j++)
            for (var c = 0; c * s.Context < tokenized[j].Ids.Length; c++)
                rows.Add((tokenized[j].Ids[(c * s.Context)..Math.Min(tokenized[j].Ids.Length, (c + 1) * s.Context)], train[j].t.Label == s.Target,
                    SeededDraw.Key(train[j].i, c)));
        var chosen = SeededDraw.WithinBudget(rows, r => r.Key, r => r.Ids.Length, s.MaxTokens, s.Seed);
        double[]? sumT = null, sumB = null;
        long nT = 0, nB = 0, tokens = 0;
        foreach (var batch in chosen.GroupBy(r => r.Ids.Length).SelectMany(g => g.Chunk(16)))
        {
            var run = await models.ForwardAsync(new ForwardCall(model, batch.Select(r => r.Ids).ToArray(), Capture: hook), ct);
            var h = run.Captured ?? throw StitchingException.FailedPrecondition($"hook: {model.Model} returned no capture of {hook}.", "hook");
            var width = (int)h.Shape[^1];
            var t = (int)h.Shape[1];
            var values = h.ToFloats();
            sumT ??= new double[width];
            sumB ??= new double[width];
            for (var r = 0; r < batch.Length; r++)
            {
                var sum = batch[r].Target ? sumT : sumB;
                for (var p = 0; p < t; p++)
                    for (var k = 0; k < width; k++) sum[k] += values[(r * t + p) * width + k];
                if (batch[r].Target) nT += t; else nB += t;
            }
            tokens += batch.Length * (long)t;
        }
        if (nT == 0 || nB == 0) throw StitchingException.FailedPrecondition($"dataset: the train split has no {(nT == 0 ? "target" : "baseline")} text; steering needs both.", "dataset");
        return ((sumT!.Select(x => x / nT).ToArray(), sumB!.Select(x => x / nB).ToArray()), tokens);
    }

    /// <summary>Consecutive passages of PassageWords words of a text (the last one when it has at least half as many).</summary>
    private static IEnumerable<string> Passages(string text)
    {
        var words = text.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
        const int n = SteeringSettings.Defaults.PassageWords;
        for (var i = 0; i < words.Length; i += n)
            if (words.Length - i >= n / 2) yield return string.Join(' ', words[i..Math.Min(words.Length, i + n)]);
    }

    /// <summary>The first PromptWords words of baseline-class test passages, drawn in a seeded order.</summary>
    private static List<string> Prompts(ProbeSet set, SteeringSettings s) =>
        set.Texts.Select((t, i) => (t, i)).Where(p => p.t.Split == Split.Test && p.t.Label != s.Target)
            .SelectMany(p => Passages(p.t.Text).Select((text, j) => (text, Key: (ulong)p.i << 20 | (uint)j)))
            .OrderBy(p => SeededDraw.Mix(s.Seed ^ p.Key ^ 0x5EED))
            .Take(s.Prompts)
            .Select(p => string.Join(' ', p.text.Split(' ').Take(s.PromptWords)))
            .ToList();

    /// <summary>A bag-of-words judge: word-presence features, a logistic probe; Says(text) = it calls text the target class.</summary>
    public sealed record Judge(string[] Vocabulary, LogisticProbe Probe, long Correct, long Test)
    {
        public double[] Features(string text)
        {
            var present = Word.Matches(text.ToLowerInvariant()).Select(m => m.Value).ToHashSet();
            return Vocabulary.Select(w => present.Contains(w) ? 1.0 : 0.0).ToArray();
        }

        public bool Says(string text) => Probe.Logits([Features(text)])[0] > 0;
    }

    private static Judge TrainJudge(ProbeSet set, SteeringSettings s)
    {
        (List<string> Texts, List<int> Y) Collect(Func<int, ProbeText, bool> which)
        {
            var (texts, y) = (new List<string>(), new List<int>());
            foreach (var (t, i) in set.Texts.Select((t, i) => (t, i)).Where(p => which(p.i, p.t)))
                foreach (var passage in Passages(t.Text)) { texts.Add(passage); y.Add(t.Label == s.Target ? 1 : 0); }
            return Balance(texts, y, s.Seed);
        }
        var validation = set.Texts.Select((t, i) => (t, i)).Where(p => p.t.Split == Split.Validation).Select(p => p.i).ToList();
        var fit = Collect((i, t) => t.Split == Split.Validation && validation.IndexOf(i) % 2 == 0);
        var choose = Collect((i, t) => t.Split == Split.Validation && validation.IndexOf(i) % 2 == 1);
        var test = Collect((_, t) => t.Split == Split.Test);
        if (fit.Y.Distinct().Count() < 2 || choose.Y.Distinct().Count() < 2)
            throw StitchingException.FailedPrecondition("dataset: the validation split's passages of even and of odd documents must each hold both classes to train the judge.", "dataset");
        var vocabulary = fit.Texts.SelectMany(t => Word.Matches(t.ToLowerInvariant()).Select(m => m.Value).Distinct())
            .GroupBy(w => w).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal)
            .Take(SteeringSettings.Defaults.JudgeWords).Select(g => g.Key).ToArray();
        var empty = new Judge(vocabulary, null!, 0, 0);
        double[][] X(List<string> texts) => texts.Select(empty.Features).ToArray();
        var probe = LogisticProbe.FitSelected(X(fit.Texts), fit.Y.ToArray(), X(choose.Texts), choose.Y.ToArray(), SteeringSettings.Defaults.JudgeL2);
        var correct = test.Texts.Count == 0 ? 0 : probe.Correct(X(test.Texts), test.Y.ToArray());
        return new Judge(vocabulary, probe, correct, test.Texts.Count);
    }

    private static (List<string>, List<int>) Balance(List<string> texts, List<int> y, ulong seed)
    {
        var order = Enumerable.Range(0, texts.Count).OrderBy(i => SeededDraw.Mix(seed ^ (ulong)i * 0x9E37)).ToList();
        var pos = order.Where(i => y[i] == 1).ToList();
        var neg = order.Where(i => y[i] == 0).ToList();
        var n = Math.Min(pos.Count, neg.Count);
        var keep = pos.Take(n).Concat(neg.Take(n)).ToList();
        return (keep.Select(i => texts[i]).ToList(), keep.Select(i => y[i]).ToList());
    }
}
