using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Forward;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;
using Stitching.Corpora.Brown;
using Stitching.Eval.Text;
using Stitching.Sae.Training;
using Stitching.Sae.Transfer;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Eval.Features;

/// <summary>How a feature-level evaluation runs (defaults in <see cref="Defaults"/>, stated in docs/metrics.md "Feature-level transfer").</summary>
public sealed record FeatureSettings(LanguageModelRef ModelA, LanguageModelRef ModelB, string HookA, string HookB, int LayersA, int LayersB,
    int Context, long MaxTokens, int Sentences, int Rewrites, int MinActive, ulong Seed)
{
    public static class Defaults
    {
        public const int Context = 128, Sentences = 64, Rewrites = 4, MinActive = 10;
        public const long MaxTokens = 16384;
    }
}

/// <summary>Summary of per-latent attribution correlations of one group of latents, with a histogram over [-1, 1] in bins of 0.1.</summary>
public sealed record CorrelationGroup(string Name, double[] Values)
{
    public int Latents => Values.Length;
    public double Mean => Values.Length == 0 ? double.NaN : Values.Average();
    public double Quantile(double q)
    {
        if (Values.Length == 0) return double.NaN;
        var sorted = Values.Order().ToArray();
        var pos = q * (sorted.Length - 1);
        var (lo, hi) = ((int)Math.Floor(pos), (int)Math.Ceiling(pos));
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
    }
    public long[] Histogram()
    {
        var counts = new long[20];
        foreach (var v in Values) counts[Math.Clamp((int)Math.Floor((v + 1) * 10), 0, 19)]++;
        return counts;
    }
}

public sealed record FeatureResult(IReadOnlyList<CorrelationGroup> Groups, int Structural, int Semantic, int Unclassified, long Tokens, int SentencesUsed, EntropyResult Entropy);

/// <summary>
/// Feature-level transfer (paper section 8). Attribution of latent i at token t: a_i(t) = f_i(x_t) * l_i[y_{t+1}],
/// where l_i is the logit lens of the latent's decoder direction (the model's final norm and unembedding applied to
/// W_dec,i / s alone, through Forward from the last layer) and y_{t+1} the next token. Per latent, the Pearson
/// correlation over held-out tokens between a_i on A (A's SAE) and on B (its transfer; same tokens), for latents
/// active on at least MinActive tokens on both sides; the same for a random SAE of A's shape transferred through
/// the same stitch. Structural vs semantic: on test sentences and syntax-preserving rewrites of them (content words
/// swapped for words of the same tag), a latent active in the original and in every rewrite counts structural for
/// that sentence, otherwise semantic; a latent is structural or semantic by majority over the sentences it fires on.
/// </summary>
public sealed class FeatureEvaluator(TorchWorker worker)
{
    public async Task<FeatureResult> EvaluateAsync(ILanguageModels models, FeatureSettings s, SaeParameters saeA, SaeParameters saeX,
        IReadOnlyList<HostTensor> stitchFile, Action<string, int, int>? progress, CancellationToken ct)
    {
        progress?.Invoke("logit lens", 0, 4);
        var random = await worker.RunAsync(() =>
        {
            var r = SaeInitializer.Create(saeA.Config with { ScalingFactor = 1 }, new float[saeA.Config.DIn], s.Seed ^ 0xFEA7);
            return (A: r, X: SaeTransfer.Apply(r, StitchFile.ToStitch(stitchFile, "stitch")));
        }, ct);
        try
        {
            var lensA = await LensAsync(models, s.ModelA, s.LayersA, saeA, ct);
            var lensX = await LensAsync(models, s.ModelB, s.LayersB, saeX, ct);
            var lensRA = await LensAsync(models, s.ModelA, s.LayersA, random.A, ct);
            var lensRX = await LensAsync(models, s.ModelB, s.LayersB, random.X, ct);

            progress?.Invoke("attributions", 1, 4);
            var texts = BrownSplit.Documents(BrownCorpus.Shared, Split.Test).Select(d => d.Render().Text).ToList();
            var tokA = await models.TokenizeAsync(s.ModelA, texts, ct);
            var tokB = await models.TokenizeAsync(s.ModelB, texts, ct);
            if (tokA.Zip(tokB).Any(p => !p.First.Ids.SequenceEqual(p.Second.Ids)))
                throw StitchingException.FailedPrecondition("model_b: its tokenizer splits the text differently from model_a's; attribution correlation pairs tokens, so both models must share a tokenizer.", "model_b");
            var rows = tokA.SelectMany((t, i) => t.Ids.Chunk(s.Context).Select((c, j) => (Ids: c, Key: SeededDraw.Key(i, j)))).Where(r => r.Ids.Length >= 2);
            var chosen = SeededDraw.WithinBudget(rows, r => r.Key, r => r.Ids.Length, s.MaxTokens, s.Seed).Select(r => r.Ids).ToList();

            var m = (int)saeA.Config.DSae;
            var (real, rand) = (new PairStats(m), new PairStats(m));
            long tokens = 0;
            foreach (var batch in chosen.GroupBy(r => r.Length).SelectMany(g => g.Chunk(16)))
            {
                var hA = (await models.ForwardAsync(new ForwardCall(s.ModelA, batch, Capture: s.HookA), ct)).Captured!;
                var hB = (await models.ForwardAsync(new ForwardCall(s.ModelB, batch, Capture: s.HookB), ct)).Captured!;
                await worker.RunAsync(() =>
                {
                    real.Add(Attributions(hA, batch, saeA, lensA), Attributions(hB, batch, saeX, lensX));
                    rand.Add(Attributions(hA, batch, random.A, lensRA), Attributions(hB, batch, random.X, lensRX));
                    return 0;
                }, ct);
                tokens += batch.Sum(r => (long)(r.Length - 1));
            }

            progress?.Invoke("rewrites", 2, 4);
            var (kind, used) = await KindsAsync(models, s, saeA, ct);
            progress?.Invoke("entropy latents", 3, 4);
            var unA = await models.UnembeddingAsync(s.ModelA, ct);
            var unB = await models.UnembeddingAsync(s.ModelB, ct);
            var entropy = await worker.RunAsync(() =>
            {
                using var scope = NewDisposeScope();
                var (basisA, basisB) = (EntropyLatentAnalysis.NullBasis(TorchTensors.ToTorchFloat(unA, "W_U")), EntropyLatentAnalysis.NullBasis(TorchTensors.ToTorchFloat(unB, "W_U")));
                if (basisA.shape[0] != saeA.Config.DIn || basisB.shape[0] != saeX.Config.DIn)
                    throw StitchingException.FailedPrecondition("model_b: the unembedding's width does not match the SAEs' (give the models the SAEs read).", "model_b");
                return EntropyLatentAnalysis.Summarise(
                    EntropyLatentAnalysis.Fractions(saeA.WDec, basisA), EntropyLatentAnalysis.Fractions(saeX.WDec, basisB),
                    EntropyLatentAnalysis.Fractions(random.A.WDec, basisA), EntropyLatentAnalysis.Fractions(random.X.WDec, basisB),
                    (int)basisA.shape[1], (int)basisB.shape[1]);
            }, ct);
            var corr = real.Correlations(s.MinActive);
            var randomCorr = rand.Correlations(s.MinActive);
            double[] Pick(Func<int, bool> which) => Enumerable.Range(0, m).Where(i => !double.IsNaN(corr[i]) && which(i)).Select(i => corr[i]).ToArray();
            var groups = new List<CorrelationGroup>
            {
                new("transferred", Pick(_ => true)),
                new("structural", Pick(i => kind[i] == 1)),
                new("semantic", Pick(i => kind[i] == -1)),
                new("random SAE", randomCorr.Where(v => !double.IsNaN(v)).ToArray()),
            };
            return new FeatureResult(groups, kind.Count(k => k == 1), kind.Count(k => k == -1), kind.Count(k => k == 0), tokens, used, entropy);
        }
        finally { await worker.RunAsync(() => { random.A.Dispose(); random.X.Dispose(); return 0; }, CancellationToken.None); }
    }

    /// <summary>Logit lens of every decoder direction, [m, V] float32 on the host (W_dec,i / s through final norm and unembedding).</summary>
    private async Task<float[][]> LensAsync(ILanguageModels models, LanguageModelRef model, int layers, SaeParameters sae, CancellationToken ct)
    {
        var m = (int)sae.Config.DSae;
        var result = new float[m][];
        for (var start = 0; start < m; start += 256)
        {
            var n = Math.Min(256, m - start);
            var from = start;
            var residual = await worker.RunAsync(() =>
            {
                var rows = sae.WDec[from..(from + n)] / sae.Config.ScalingFactor;
                return TorchTensors.ToHost(rows.unsqueeze(0).to(ScalarType.Float32), "residual");
            }, ct);
            var outcome = await models.ForwardAsync(new ForwardCall(model, [new int[n]], Start: (layers, residual), Logits: true), ct);
            var logits = outcome.Logits ?? throw StitchingException.FailedPrecondition("model: Forward returned no logits.", "model");
            var v = (int)logits.Shape[^1];
            var flat = logits.ToFloats();
            for (var i = 0; i < n; i++) result[from + i] = flat.AsSpan(i * v, v).ToArray();
        }
        return result;
    }

    /// <summary>a[t, i] = f_i(x_t) l_i[y_{t+1}] for every position but each row's last, [N, m] float64 (torch thread).</summary>
    private static Tensor Attributions(HostTensor captured, int[][] batch, SaeParameters sae, float[][] lens)
    {
        var h = TorchTensors.ToTorchFloat(captured, "captured");
        var (b, t) = (batch.Length, batch[0].Length);
        var x = h[.., ..(t - 1)].reshape(-1, h.shape[^1]);
        var f = sae.Encode(x).to(ScalarType.Float64);                       // [N, m]
        var next = batch.SelectMany(r => r[1..]).ToArray();
        var m = lens.Length;
        var gathered = new double[next.Length * m];
        for (var n = 0; n < next.Length; n++)
            for (var i = 0; i < m; i++) gathered[n * m + i] = lens[i][next[n]];
        return f * tensor(gathered, [next.Length, m], dtype: ScalarType.Float64);
    }

    /// <summary>Running sums for per-latent Pearson correlations between two attribution streams over the same tokens.</summary>
    private sealed class PairStats(int m)
    {
        private readonly double[] _a = new double[m], _b = new double[m], _aa = new double[m], _bb = new double[m], _ab = new double[m];
        private readonly long[] _activeA = new long[m], _activeB = new long[m];
        private long _n;

        public void Add(Tensor a, Tensor b)
        {
            void Acc(double[] target, Tensor v) { var s = v.sum([0]).data<double>().ToArray(); for (var i = 0; i < m; i++) target[i] += s[i]; }
            void Count(long[] target, Tensor v) { var s = v.ne(0).sum([0]).data<long>().ToArray(); for (var i = 0; i < m; i++) target[i] += s[i]; }
            Acc(_a, a); Acc(_b, b); Acc(_aa, a * a); Acc(_bb, b * b); Acc(_ab, a * b);
            Count(_activeA, a); Count(_activeB, b);
            _n += a.shape[0];
        }

        /// <summary>Pearson r per latent; NaN where either side is active on fewer than minActive tokens or has no variance.</summary>
        public double[] Correlations(int minActive) => Enumerable.Range(0, m).Select(i =>
        {
            if (_activeA[i] < minActive || _activeB[i] < minActive) return double.NaN;
            var cov = _ab[i] - _a[i] * _b[i] / _n;
            var va = _aa[i] - _a[i] * _a[i] / _n;
            var vb = _bb[i] - _b[i] * _b[i] / _n;
            return va > 0 && vb > 0 ? cov / Math.Sqrt(va * vb) : double.NaN;
        }).ToArray();
    }

    /// <summary>Per latent of A's SAE: 1 structural, -1 semantic, 0 unclassified (never fired on an original sentence, or a tie).</summary>
    private async Task<(int[] Kind, int Used)> KindsAsync(ILanguageModels models, FeatureSettings s, SaeParameters saeA, CancellationToken ct)
    {
        var corpus = BrownCorpus.Shared;
        var rewriter = new Rewrites(BrownSplit.Documents(corpus, Split.Train), (int)(s.Seed % int.MaxValue));
        // keys from positions in the split (string hash codes are randomised per process)
        var candidates = BrownSplit.Documents(corpus, Split.Test)
            .SelectMany((d, di) => Enumerable.Range(0, d.Sentences.Count).Select(i => (Doc: d, Sentence: i, Key: (ulong)di << 20 | (uint)i)))
            .OrderBy(p => SeededDraw.Mix(s.Seed ^ p.Key)).Select(p => (p.Doc, p.Sentence)).ToList();
        var m = (int)saeA.Config.DSae;
        var (structural, semantic) = (new int[m], new int[m]);
        var used = 0;
        foreach (var (doc, sentence) in candidates)
        {
            if (used >= s.Sentences) break;
            var set = rewriter.Rewrite(doc, sentence, s.Rewrites);
            if (set.Replaced.Length == 0) continue;
            var versions = new[] { set.Original }.Concat(set.Rewrites).ToList();
            var tokens = await models.TokenizeAsync(s.ModelA, versions, ct);
            if (tokens.Any(t => t.Ids.Length == 0 || t.Ids.Length > s.Context)) continue;
            var active = new List<HashSet<int>>();
            foreach (var t in tokens)
            {
                var h = (await models.ForwardAsync(new ForwardCall(s.ModelA, [t.Ids], Capture: s.HookA), ct)).Captured!;
                active.Add(await worker.RunAsync(() =>
                {
                    var f = saeA.Encode(TorchTensors.ToTorchFloat(h, "captured").reshape(-1, h.Shape[^1]));
                    return f.ne(0).any(0).nonzero().squeeze(1).data<long>().Select(i => (int)i).ToHashSet();
                }, ct));
            }
            foreach (var i in active[0])
                if (active.Skip(1).All(a => a.Contains(i))) structural[i]++; else semantic[i]++;
            used++;
        }
        return (Enumerable.Range(0, m).Select(i => structural[i] > semantic[i] ? 1 : semantic[i] > structural[i] ? -1 : 0).ToArray(), used);
    }
}
