using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Activations;
using Stitching.Core.Artifacts;
using Stitching.Core.Errors;
using Stitching.Sae.Architectures;
using Stitching.Sae.Storage;
using Stitching.Sae.Training;
using Stitching.Sae.Weights;
using D = Stitching.Sae.Training.TrainSettings.Defaults;

namespace Stitching.Sae.Operations;

/// <summary>The gRPC edge of training: a TrainRequest validated against the store and mapped to <see cref="TrainSettings"/>.</summary>
public static class TrainRequests
{
    public static TrainSettings ToSettings(TrainRequest r, ArtifactStore store)
    {
        store.Require(r.ActivationSet, ActivationSetLayout.Kind, "activation_set", "run an extraction first.");
        var spec = r.Sae ?? new SaeSpec();
        var arch = SaeArchitectures.Get(string.IsNullOrEmpty(spec.Architecture) ? D.Architecture : spec.Architecture, "sae.architecture");
        var hasInit = r.Init is not null && (r.Init.Id.Length > 0 || r.Init.Kind.Length > 0);
        if (!hasInit && spec.DSae <= 0) throw StitchingException.InvalidArgument("sae.d_sae", "set the number of latents (e.g. 16384), or give init to warm-start.");
        Check.InRange(spec.DSae, 0, MaxLatents, "sae.d_sae", "the number of latents");
        Check.InRange(spec.K, 0, Math.Max(0, spec.DSae == 0 ? MaxLatents : spec.DSae), "sae.k", "active latents per token, at most d_sae; 0 = default");
        Check.InRange(spec.SparsityCoefficient, 0, 1e6, "sae.sparsity_coefficient", "0 = the architecture's default");
        Check.InRange(spec.InitialThreshold, 0, 1e6, "sae.initial_threshold");
        Check.InRange(spec.Bandwidth, 0, 1e6, "sae.bandwidth");
        Check.InRange(r.BatchSize, 0, MaxBatch, "batch_size", $"tokens per step; 0 = default {D.BatchSize}");
        Check.InRange(r.Lr, 0, 10, "lr", $"Adam learning rate; 0 = default {D.Lr}");
        if (!(r.Beta1 is >= 0 and < 1)) throw StitchingException.InvalidArgument("beta1", $"is {r.Beta1}; Adam's beta1 must lie in [0, 1) (0 = default {D.Beta1}).");
        if (!(r.Beta2 is >= 0 and < 1)) throw StitchingException.InvalidArgument("beta2", $"is {r.Beta2}; Adam's beta2 must lie in [0, 1) (0 = default {D.Beta2}).");
        Check.NonNegative(r.Tokens, "tokens", "0 = one pass over the set");
        Check.NonNegative(r.CheckpointEvery, "checkpoint_every", $"0 = default {D.CheckpointEvery}");
        Check.NonNegative(r.LogEvery, "log_every", $"0 = default {D.LogEvery}");
        Check.InRange(r.ShuffleShards, 0, 64, "shuffle_shards", $"shards in the shuffling buffer; 0 = default {D.ShuffleShards}");
        Check.NonNegative(r.WarmupSteps, "warmup_steps");
        Check.InRange(r.DecayFraction, 0, 1, "decay_fraction");
        Check.InRange(r.AuxKCoefficient, 0, 1e6, "aux_k_coefficient", "0 = AuxK off");
        Check.InRange(r.AuxK, 0, MaxLatents, "aux_k");
        Check.NonNegative(r.DeadWindowTokens, "dead_window_tokens", $"0 = default {D.DeadWindowTokens}");
        Check.InRange(r.ExtraFlops, 0, 1e30, "extra_flops");
        if (r.LrSchedule is not ("" or "constant" or "warmup_decay")) throw StitchingException.InvalidArgument("lr_schedule", $"'{Check.Shorten(r.LrSchedule)}' is not a schedule; use constant (default) or warmup_decay.");
        if (!string.IsNullOrEmpty(r.Hook)) Check.Name(r.Hook, "hook", "a hook name");
        // Memory the step needs, about: batch x d_sae activations (forward, backward, Adam) in float32.
        var batch = (long)(r.BatchSize == 0 ? D.BatchSize : r.BatchSize);
        if (batch * Math.Max(spec.DSae, 1) * 4 * 8 > MaxStepBytes)
            throw StitchingException.ResourceExhausted($"batch_size: a step of {batch} tokens x {spec.DSae} latents needs more than {MaxStepBytes >> 30} GiB here; lower batch_size or d_sae.", "batch_size");
        var normalize = string.IsNullOrEmpty(spec.NormalizeActivations) ? D.NormalizeActivations : spec.NormalizeActivations;
        if (normalize is not (SaeConfig.NoNormalization or SaeConfig.ExpectedAverageOnlyIn))
            throw StitchingException.InvalidArgument("sae.normalize_activations", $"is '{spec.NormalizeActivations}'; use \"{SaeConfig.ExpectedAverageOnlyIn}\" (default) or \"{SaeConfig.NoNormalization}\".");
        Check.InRange(r.EvalTokens, 0, 1 << 20, "eval_tokens", $"held-out rows; 0 = default {D.EvalTokens}");
        Check.NonNegative(r.EvalEvery, "eval_every", "0 = default (total steps / 100)");
        var evalSet = r.EvalActivationSet is { Id.Length: > 0 } ev ? ev : null;
        if (evalSet is not null) store.Require(evalSet, ActivationSetLayout.Kind, "eval_activation_set", "extract the held-out set first.");
        if (hasInit) store.Require(r.Init, SaeArtifacts.Kind, "init", "transfer or import it first.");
        var shape = new SaeShape(arch.Name, spec.DSae, arch.UsesK && spec.K == 0 ? D.K : spec.K,
            // SAELens's TopK recipe subtracts b_dec (initialised at the data mean) before encoding.
            spec.ApplyBDecToInput ?? arch.UsesK, normalize,
            spec.SparsityCoefficient == 0 ? D.SparsityCoefficient(arch.Name) : spec.SparsityCoefficient, spec.InitialThreshold, spec.Bandwidth);
        return new TrainSettings(
            r.ActivationSet.Id, r.Hook, shape, hasInit ? r.Init!.Id : null, r.Tokens, r.BatchSize == 0 ? D.BatchSize : r.BatchSize,
            r.Lr == 0 ? D.Lr : r.Lr, r.Beta1 == 0 ? D.Beta1 : r.Beta1, r.Beta2 == 0 ? D.Beta2 : r.Beta2,
            string.IsNullOrEmpty(r.LrSchedule) ? D.LrSchedule : r.LrSchedule, r.WarmupSteps, r.DecayFraction,
            r.ShuffleShards == 0 ? D.ShuffleShards : r.ShuffleShards, r.Seed,
            r.CheckpointEvery == 0 ? D.CheckpointEvery : r.CheckpointEvery, r.LogEvery == 0 ? D.LogEvery : r.LogEvery,
            r.AuxKCoefficient, r.AuxKCoefficient > 0 && r.AuxK == 0 ? D.AuxK : r.AuxK,
            r.DeadWindowTokens == 0 ? D.DeadWindowTokens : r.DeadWindowTokens, r.IncludeSpecial, r.ExtraFlops,
            string.IsNullOrEmpty(r.Id) ? null : ArtifactIds.Validate(r.Id, "id"),
            evalSet?.Id, r.EvalTokens == 0 ? D.EvalTokens : r.EvalTokens, r.EvalEvery, r.RenormalizeInit ?? D.RenormalizeInit);
    }

    public const int MaxLatents = 1 << 22, MaxBatch = 1 << 20;
    public const long MaxStepBytes = 16L << 30;

    public static ArtifactRef ActivationSetRef(string id) => new() { Kind = ActivationSetLayout.Kind, Id = id };
    public static ArtifactRef SaeRef(string id) => new() { Kind = SaeArtifacts.Kind, Id = id };
}
