using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Forward;
using Stitching.Core.Metrics;
using Stitching.Core.Tensors;
using Stitching.Sae.Training;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Eval.Sae;

/// <summary>What an SAE evaluation measured (docs/metrics.md "SAE evaluation").</summary>
public sealed record SaeEvaluationResult(
    double L0, double Mse, double Fvu, double ExplainedVariance, double Cosine, double DeadFraction,
    double CeClean, double CeSpliced, double CeZeroAblation, double CeMeanAblation, double Kl,
    double[] DensityEdges, long[] DensityCounts, long Tokens, long PredictedTokens, int Rows)
{
    public double CeDelta => CeSpliced - CeClean;
    public double LossRecovered => LanguageModelMetrics.LossRecovered(CeClean, CeSpliced, CeZeroAblation);
    public double LossRecoveredMean => LanguageModelMetrics.LossRecovered(CeClean, CeSpliced, CeMeanAblation);
}

/// <summary>
/// An SAE on held-out token rows, batch by batch through a model's Forward: the clean run captures the
/// hook; the SAE reconstructs it at the non-special positions (special = the model's BOS id); reconstruction
/// and sparsity tallies cover those positions; a second pass runs the model with the reconstruction spliced
/// in (special positions keep their clean value), with the hook zero-ablated and mean-ablated (the mean of
/// the hook over every evaluated non-special token). CE and KL are token-weighted means over the batches.
/// </summary>
public sealed class SaeEvaluator(TorchWorker worker)
{
    public async Task<SaeEvaluationResult> EvaluateAsync(ILanguageModels models, LanguageModelRef model, SaeParameters sae, string hook,
        IReadOnlyList<int[]> rows, int batchSize, int? bosId, CancellationToken ct)
    {
        if (rows.Count == 0) throw StitchingException.InvalidArgument("token_ids", "give at least one row of tokens.");
        var batches = rows.Chunk(batchSize).ToList();
        return await EvaluateBatchesAsync(models, model, sae, hook, batches, bosId, ct);
    }

    /// <summary>
    /// The floor of the paper's Table 2: a random SAE of <paramref name="config"/>'s shape as the training recipe starts
    /// one (<see cref="SaeInitializer"/>: seeded unit decoder rows, encoder = decoder^T, b_enc = 0), with b_dec = the
    /// hook's mean over the evaluated non-special tokens (one extra capture pass) and no input scaling; then evaluated as any SAE.
    /// </summary>
    public async Task<SaeEvaluationResult> EvaluateRandomAsync(ILanguageModels models, LanguageModelRef model, SaeConfig config, ulong seed, string hook,
        IReadOnlyList<int[]> rows, int batchSize, int? bosId, CancellationToken ct)
    {
        if (rows.Count == 0) throw StitchingException.InvalidArgument("token_ids", "give at least one row of tokens.");
        var batches = rows.Chunk(batchSize).ToList();
        var sum = new double[config.DIn];
        long count = 0;
        foreach (var ids in batches)
        {
            var h = (await models.ForwardAsync(new ForwardCall(model, ids, Capture: hook), ct)).Captured
                ?? throw StitchingException.FailedPrecondition($"hook: the model returned no capture of {hook}.", "hook");
            var (sums, n) = await worker.RunAsync(() =>
            {
                using var scope = NewDisposeScope();
                var kept = NonSpecial(TorchTensors.ToTorchFloat(h, "captured"), ids, bosId).Kept;
                return (kept.to(ScalarType.Float64).sum([0]).data<double>().ToArray(), kept.shape[0]);
            }, ct);
            if (sums.Length != sum.Length)
                throw StitchingException.FailedPrecondition($"sae: it reads width {config.DIn} but {hook} of {model.Model} has width {sums.Length}.", "sae");
            for (var j = 0; j < sum.Length; j++) sum[j] += sums[j];
            count += n;
        }
        if (count == 0) throw StitchingException.InvalidArgument("token_ids", "every token is special (BOS); give rows of text tokens.");
        var mean = sum.Select(v => (float)(v / count)).ToArray();
        var random = await worker.RunAsync(() => SaeInitializer.Create(config with { ScalingFactor = 1 }, mean, seed), ct);
        try { return await EvaluateBatchesAsync(models, model, random, hook, batches, bosId, ct); }
        finally { await worker.RunAsync(() => { random.Dispose(); return 0; }, CancellationToken.None); }
    }

    /// <summary>The flattened positions of a [b, T, d] capture that are not special, and their indices.</summary>
    private static (Tensor Flat, Tensor Index, Tensor Kept) NonSpecial(Tensor x, int[][] ids, int? bosId)
    {
        var flat = x.reshape(-1, x.shape[^1]);
        var index = tensor(ids.SelectMany(r => r).Select(id => id != bosId).ToArray()).nonzero().squeeze(1);
        return (flat, index, flat.index_select(0, index));
    }

    private async Task<SaeEvaluationResult> EvaluateBatchesAsync(ILanguageModels models, LanguageModelRef model, SaeParameters sae, string hook,
        List<int[][]> batches, int? bosId, CancellationToken ct)
    {
        var rowCount = batches.Sum(b => b.Length);
        var recon = new ReconstructionTally();
        var sparsity = new SparsityTally(sae.Config.DSae);
        var clean = new List<(ForwardOutcome Outcome, HostTensor Spliced)>();
        var meanSum = new double[sae.Config.DIn];
        long meanCount = 0;
        foreach (var ids in batches)
        {
            var run = await models.ForwardAsync(new ForwardCall(model, ids, Capture: hook), ct);
            var h = run.Captured ?? throw StitchingException.FailedPrecondition($"hook: the model returned no capture of {hook}.", "hook");
            if (h.Shape[^1] != sae.Config.DIn)
                throw StitchingException.FailedPrecondition($"sae: it reads width {sae.Config.DIn} but {hook} of {model.Model} has width {h.Shape[^1]}; evaluate it on the model it was trained or transferred for.", "sae");
            var spliced = await worker.RunAsync(() =>
            {
                using var scope = NewDisposeScope();
                var x = TorchTensors.ToTorchFloat(h, "captured"); // [b, T, d]
                var (flat, index, kept) = NonSpecial(x, ids, bosId);
                var latents = sae.Encode(kept);
                var reconstruction = sae.Decode(latents);
                recon.Add(kept, reconstruction);
                sparsity.Add(latents);
                var sums = kept.to(ScalarType.Float64).sum([0]).data<double>().ToArray();
                for (var j = 0; j < sums.Length; j++) meanSum[j] += sums[j];
                meanCount += kept.shape[0];
                var full = flat.clone().index_copy_(0, index, reconstruction.to(flat.dtype));
                return TorchTensors.ToHost(full.reshape(x.shape), "spliced");
            }, ct);
            clean.Add((run, spliced));
        }
        if (meanCount == 0) throw StitchingException.InvalidArgument("token_ids", "every token is special (BOS); give rows of text tokens.");
        var mean = HostTensor.FromFloats("mean", meanSum.Select(s => (float)(s / meanCount)).ToArray(), meanSum.Length);

        double ceClean = 0, ceSpliced = 0, ceZero = 0, ceMean = 0, kl = 0;
        long predicted = 0, positions = 0;
        for (var i = 0; i < batches.Count; i++)
        {
            var ids = batches[i];
            var (p, n) = (ids.Length * (long)(ids[0].Length - 1), ids.Length * (long)ids[0].Length);
            var spliced = await models.ForwardAsync(new ForwardCall(model, ids, Edit: new ReplaceEdit(hook, clean[i].Spliced), Kl: true), ct);
            var zero = await models.ForwardAsync(new ForwardCall(model, ids, Edit: new AblateEdit(hook, null)), ct);
            var meanAblated = await models.ForwardAsync(new ForwardCall(model, ids, Edit: new AblateEdit(hook, mean)), ct);
            ceClean += clean[i].Outcome.MeanLoss * p;
            ceSpliced += spliced.MeanLoss * p;
            ceZero += zero.MeanLoss * p;
            ceMean += meanAblated.MeanLoss * p;
            kl += spliced.MeanKl * n;
            predicted += p;
            positions += n;
        }
        var (edges, counts) = sparsity.DensityHistogram();
        return new SaeEvaluationResult(sparsity.L0, recon.Mse, recon.Fvu, recon.ExplainedVariance, recon.Cosine, sparsity.DeadFraction,
            ceClean / predicted, ceSpliced / predicted, ceZero / predicted, ceMean / predicted, kl / positions,
            edges, counts, recon.Tokens, predicted, rowCount);
    }
}
