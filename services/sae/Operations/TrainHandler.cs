using Stitching.Core.Activations;
using System.Diagnostics;
using Google.Protobuf;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Caching;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Operations;
using Stitching.Core.Telemetry;
using Stitching.Sae.Architectures;
using Stitching.Sae.Evaluation;
using Stitching.Sae.Data;
using Stitching.Sae.Storage;
using Stitching.Sae.Training;
using Stitching.Sae.Weights;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

using FlopLedger = Stitching.Core.Compute.FlopLedger;
using LedgerEntry = Stitching.Core.Compute.LedgerEntry;

namespace Stitching.Sae.Operations;

/// <summary>
/// "sae.train": trains an SAE on one hook of an ActivationSet (scratch, or warm-started from an init SAE),
/// streaming shards through the cache into a seeded shuffling buffer. Checkpoints every N steps; after a
/// host restart the job continues from its newest checkpoint and ends where an uninterrupted run ends.
/// With eval_activation_set it also measures the SAE on a fixed held-out batch (heldout_log.json).
/// </summary>
public sealed class TrainHandler(ArtifactStore store, IShardCache cache, TorchWorker worker,
    [FromKeyedServices("Sae")] StitchingTelemetry telemetry) : IOperationHandler
{
    public const string OperationKind = "sae.train";
    public string Kind => OperationKind;
    public bool Resumable => true;

    public async Task ExecuteAsync(OperationContext context, CancellationToken ct)
    {
        var request = TrainRequests.ToSettings(context.SpecAs<TrainRequest>(), store);
        var set = ActivationSetReader.Open(store, cache, TrainRequests.ActivationSetRef(request.ActivationSet), "activation_set");
        var hook = set.Info.ChooseHook(request.Hook, "hook");
        var source = new ActivationSetShards(set, hook, request.IncludeSpecial);
        var steps = request.Steps(source.Tokens);
        var schedule = LearningRateSchedule.Create(request.LrSchedule, request.Lr, request.WarmupSteps, request.DecayFraction, steps);
        var options = request.Trainer;
        var output = TrainRequests.SaeRef(request.Id ?? "sae-" + context.Id);
        if (store.Exists(output)) { Finish(context, SaeArtifacts.Describe(store, output, "id"), steps); return; }

        using var activity = telemetry.Source.StartActivity(OperationKind);
        activity?.SetTag(StitchingTelemetry.OperationAttribute, context.Id);
        activity?.SetTag(StitchingTelemetry.HookAttribute, hook);
        activity?.SetTag(StitchingTelemetry.ModelAttribute, set.Info.Model);
        var stream = new ShuffledRows(source, request.ShuffleShards, request.Seed);
        var run = await StartOrResumeAsync(context, request, source, stream, options, hook, set.Info, ct);
        var evalEvery = request.EvalEvery > 0 ? request.EvalEvery : Math.Max(1, steps / 100);
        var heldOut = await LoadHeldOutAsync(request, hook, source.Width, ct);
        try
        {
            if (heldOut is not null && run.HeldOut.Rows.Count == 0)
                run.HeldOut.Rows.Add(await OnWorker(() => heldOut.Evaluate(run.Trainer.Sae, 0, 0, run.Trainer.Flops), ct));
            var clock = Stopwatch.StartNew();
            var startTokens = run.Trainer.Tokens;
            while (run.Trainer.Step < steps)
            {
                ct.ThrowIfCancellationRequested();
                var rows = await stream.NextAsync(request.BatchSize, ct);
                var lr = schedule.At(run.Trainer.Step + 1);
                var m = await OnWorker(() => run.Trainer.TrainStep(tensor(rows, [request.BatchSize, source.Width]), lr), ct);
                telemetry.AddFlops(Flops.SaeTrainingStep(request.BatchSize, source.Width, run.Trainer.Sae.Config.DSae, options.AuxKCoefficient > 0), activity);
                if (m.Step % request.LogEvery == 0 || m.Step == steps) run.Log.Rows.Add(m);
                if (heldOut is not null && HeldOutLog.IsEvalStep(m.Step, steps, evalEvery))
                    run.HeldOut.Rows.Add(await OnWorker(() => heldOut.Evaluate(run.Trainer.Sae, m.Step, m.Tokens, m.Flops), ct));
                Report(context, m, steps, (m.Tokens - startTokens) / Math.Max(1e-9, clock.Elapsed.TotalSeconds));
                if (m.Step % request.CheckpointEvery == 0 && m.Step < steps)
                {
                    ct.ThrowIfCancellationRequested();
                    var position = new TrainingCheckpoint(m.Step, m.Tokens, m.Flops, stream.Window, stream.Offset);
                    await OnWorker(() => { position.Save(store, context.Id, run.Trainer, run.InitDecoder, run.Log, run.HeldOut); return 0; }, ct);
                }
            }
            ct.ThrowIfCancellationRequested();
            var last = run.Log.Rows[^1];
            var metrics = new Dictionary<string, double>
            {
                ["flops"] = run.Trainer.Flops, ["tokens"] = run.Trainer.Tokens, ["steps"] = run.Trainer.Step,
                ["mse"] = last.Mse, ["fvu"] = last.Fvu, ["explained_variance"] = last.ExplainedVariance, ["l0"] = last.L0, ["dead_fraction"] = last.DeadFraction,
            };
            if (run.HeldOut.Rows.Count > 0)
            {
                var (first, final) = (run.HeldOut.Rows[0], run.HeldOut.Rows[^1]);
                metrics["heldout_fvu"] = final.Fvu;
                metrics["heldout_explained_variance"] = final.ExplainedVariance;
                metrics["heldout_l0"] = final.L0;
                metrics["initial_heldout_fvu"] = first.Fvu;
            }
            var metadata = new Dictionary<string, string> { ["activation_set"] = request.ActivationSet, ["operation"] = context.Id, ["seed"] = request.Seed.ToString() };
            if (request.Init is { } initId) metadata["init"] = initId;
            var spec = System.Text.Json.JsonSerializer.Serialize(request);
            var ledger = run.Before.Add(new LedgerEntry(FlopLedger.SaeTrain, run.Trainer.Flops - run.Before.TotalFlops, run.Trainer.Tokens, clock.Elapsed.TotalSeconds, output.Display()));
            var info = await OnWorker(() => SaeArtifacts.Save(store, output, run.Trainer.Sae, metrics, metadata, run.Log, run.InitDecoder, spec, run.HeldOut, ledger), ct);
            foreach (var older in new[] { TrainingCheckpoint.Latest(store, context.Id) }.OfType<ArtifactRef>()) store.Delete(older);
            // Bytes: the float32 activation rows this run read (tokens x width x 4).
            var tokensThisRun = run.Trainer.Tokens - startTokens;
            telemetry.RecordWork("train", tokensThisRun, run.Trainer.Flops - run.Before.TotalFlops, tokensThisRun * source.Width * sizeof(float), clock.Elapsed.TotalSeconds, activity);
            Finish(context, info, steps);
        }
        finally
        {
            await worker.RunAsync(() => { run.Trainer.Sae.Dispose(); run.Trainer.Dispose(); run.InitDecoder.Dispose(); heldOut?.Dispose(); return 0; }, CancellationToken.None);
        }
    }

    /// <summary>A run in progress; <see cref="Before"/> is the ledger before this run's training (init, extra).</summary>
    private sealed record Run(SaeTrainer Trainer, Tensor InitDecoder, TrainingLog Log, HeldOutLog HeldOut, FlopLedger Before);

    /// <summary>The fixed held-out batch: the first eval_tokens non-special rows of the eval set, in shard order.</summary>
    private async Task<HeldOutBatch?> LoadHeldOutAsync(TrainSettings request, string hook, int width, CancellationToken ct)
    {
        if (request.EvalActivationSet is not { } id) return null;
        var set = ActivationSetReader.Open(store, cache, TrainRequests.ActivationSetRef(id), "eval_activation_set");
        var evalHook = set.Info.ChooseHook(hook, "eval_activation_set");
        var source = new ActivationSetShards(set, evalHook, request.IncludeSpecial);
        if (source.Width != width)
            throw StitchingException.FailedPrecondition($"held-out set {id} has width {source.Width} at {evalHook}, the training set {width}; extract both from one model.", "eval_activation_set");
        var rows = new List<float>();
        for (var shard = 0; shard < source.Shards && rows.Count / width < request.EvalTokens; shard++)
            rows.AddRange((await source.LoadAsync(shard, ct)).Values);
        var n = (int)Math.Min(request.EvalTokens, rows.Count / width);
        if (n < 2) throw StitchingException.FailedPrecondition($"held-out set {id} has fewer than 2 usable rows; extract more held-out text.", "eval_activation_set");
        var values = rows.GetRange(0, n * width).ToArray();
        return await OnWorker(() => new HeldOutBatch(tensor(values, [n, width])), ct);
    }

    private async Task<Run> StartOrResumeAsync(OperationContext context, TrainSettings request, IShardSource source, ShuffledRows stream,
        TrainerOptions options, string hook, ActivationSetInfo set, CancellationToken ct)
    {
        var initRef = request.Init is { } initId ? TrainRequests.SaeRef(initId) : null;
        // The run's ledger starts with its init's (a transferred SAE: its stitch's fitting) and the client's extra FLOPs.
        var ledger = initRef is null ? FlopLedger.Empty : store.GetManifest(initRef).Ledger();
        if (request.ExtraFlops != 0) ledger = ledger.Add(new LedgerEntry(FlopLedger.Extra, request.ExtraFlops));
        var checkpoint = TrainingCheckpoint.Latest(store, context.Id);
        if (checkpoint is not null)
        {
            var (position, trainer, init, log, heldOut) = await OnWorker(() => TrainingCheckpoint.Load(store, checkpoint, options), ct);
            stream.Seek(position.Window, position.Offset);
            context.Report(new OperationProgress { Phase = "resume", Step = position.Step, Tokens = position.Tokens, Flops = position.Flops, Message = $"resumed from {checkpoint.Id}" });
            return new Run(trainer, init, log, heldOut, ledger);
        }
        SaeParameters sae;
        var (mean, meanSquaredNorm) = await stream.WindowStatsAsync(ct);
        var normalize = request.Sae.NormalizeActivations == SaeConfig.ExpectedAverageOnlyIn;
        // expected_average_only_in: s = sqrt(d_in / E||x||^2) on the first shuffle window, so E||s x||^2 = d_in.
        var scale = normalize && meanSquaredNorm > 0 ? Math.Sqrt(source.Width / meanSquaredNorm) : 1.0;
        if (initRef is not null)
        {
            var init = SaeArtifacts.Load(store, initRef, "init");
            if (init.Config.DIn != source.Width)
                throw StitchingException.FailedPrecondition($"the init SAE reads width {init.Config.DIn} but hook {hook} has width {source.Width}; transfer it to this model first.", "init");
            sae = await OnWorker(() =>
            {
                using var _ = init;
                // Same function in this run's scaled space, then (by default) unit decoder rows as the trainer keeps them.
                using var rescaled = init.WithScalingFactor(scale);
                var model = string.IsNullOrEmpty(set.Model) ? init.Config.Model : set.Model;
                if (!request.RenormalizeInit) return rescaled.Clone(rescaled.Config with { Model = model, Hook = hook });
                using var unit = Transfer.SaeTransfer.RenormalizeDecoder(rescaled);
                return unit.Clone(unit.Config with { Model = model, Hook = hook });
            }, ct);
        }
        else
        {
            var spec = request.Sae;
            var config = new SaeConfig(spec.Architecture, source.Width, spec.DSae, spec.K, spec.ApplyBDecToInput,
                set.Model, hook, spec.SparsityCoefficient, spec.Bandwidth,
                normalize ? SaeConfig.ExpectedAverageOnlyIn : SaeConfig.NoNormalization, scale);
            var scaledMean = mean.Select(v => (float)(v * scale)).ToArray();
            sae = await OnWorker(() => SaeInitializer.Create(config, scaledMean, request.Seed, spec.InitialThreshold), ct);
        }
        var offset = ledger.TotalFlops;
        var (t, initDecoder) = await OnWorker(() => (new SaeTrainer(sae, options, offset), sae.WDec.detach().clone().DetachFromDisposeScope()), ct);
        return new Run(t, initDecoder, new TrainingLog(), new HeldOutLog(), ledger);
    }

    private static void Report(OperationContext context, StepMetrics m, long steps, double tokensPerSecond) =>
        context.Report(new OperationProgress
        {
            Phase = "train", Step = m.Step, TotalSteps = steps, Tokens = m.Tokens, Flops = m.Flops,
            Metrics =
            {
                ["loss"] = m.Loss, ["mse"] = m.Mse, ["fvu"] = m.Fvu, ["explained_variance"] = m.ExplainedVariance,
                ["l0"] = m.L0, ["dead_fraction"] = m.DeadFraction, ["tokens_per_second"] = tokensPerSecond,
            },
        });

    private static void Finish(OperationContext context, SaeInfo info, long steps)
    {
        context.AddOutput(info.Ref);
        context.SetResult(new TrainResult
        {
            Sae = info, Steps = (long)info.Metrics.GetValueOrDefault("steps", steps), Tokens = (long)info.Metrics.GetValueOrDefault("tokens", 0),
            Flops = info.Ledger?.TotalFlops ?? 0, Ledger = info.Ledger,
        });
    }

    /// <summary>Runs torch work on the worker; a worker disposed by a shutting-down host reads as cancellation.</summary>
    private async Task<T> OnWorker<T>(Func<T> work, CancellationToken ct)
    {
        try { return await worker.RunAsync(work, ct); }
        catch (ObjectDisposedException) when (ct.IsCancellationRequested) { throw new OperationCanceledException(ct); }
    }
}
