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
        var hasInit = r.Init is { Id.Length: > 0 };
        if (!hasInit && spec.DSae <= 0) throw StitchingException.InvalidArgument("sae.d_sae", "set the number of latents (e.g. 16384), or give init to warm-start.");
        if (spec.K < 0) throw StitchingException.InvalidArgument("sae.k", "must be positive.");
        if (r.BatchSize < 0) throw StitchingException.InvalidArgument("batch_size", $"must be positive (default {D.BatchSize}).");
        if (r.Lr < 0) throw StitchingException.InvalidArgument("lr", $"must be positive (default {D.Lr}).");
        if (r.Beta1 is < 0 or >= 1 || r.Beta2 is < 0 or >= 1) throw StitchingException.InvalidArgument("beta1", "Adam betas must lie in [0, 1).");
        if (r.Tokens < 0) throw StitchingException.InvalidArgument("tokens", "must be positive (0 = one pass over the set).");
        if (r.CheckpointEvery < 0 || r.LogEvery < 0) throw StitchingException.InvalidArgument("checkpoint_every", "checkpoint_every and log_every must be positive.");
        if (r.ShuffleShards < 0) throw StitchingException.InvalidArgument("shuffle_shards", $"must be positive (default {D.ShuffleShards}).");
        var normalize = string.IsNullOrEmpty(spec.NormalizeActivations) ? D.NormalizeActivations : spec.NormalizeActivations;
        if (normalize is not (SaeConfig.NoNormalization or SaeConfig.ExpectedAverageOnlyIn))
            throw StitchingException.InvalidArgument("sae.normalize_activations", $"is '{spec.NormalizeActivations}'; use \"{SaeConfig.ExpectedAverageOnlyIn}\" (default) or \"{SaeConfig.NoNormalization}\".");
        if (r.EvalTokens < 0 || r.EvalEvery < 0) throw StitchingException.InvalidArgument("eval_tokens", "eval_tokens and eval_every must be positive (0 = default).");
        var evalSet = r.EvalActivationSet is { Id.Length: > 0 } ev ? ev : null;
        if (evalSet is not null) store.Require(evalSet, ActivationSetLayout.Kind, "eval_activation_set", "extract the held-out set first.");
        if (hasInit) store.Require(r.Init, SaeArtifacts.Kind, "init", "transfer or import it first.");
        var shape = new SaeShape(arch.Name, spec.DSae, arch.UsesK && spec.K == 0 ? D.K : spec.K,
            // SAELens's TopK recipe subtracts b_dec (initialised at the data mean) before encoding.
            spec.ApplyBDecToInput ?? arch.UsesK, normalize,
            spec.SparsityCoefficient == 0 ? D.SparsityCoefficient(arch.Name) : spec.SparsityCoefficient, spec.InitialThreshold, spec.Bandwidth);
        return new TrainSettings(
            r.ActivationSet.Id, r.Hook, shape, hasInit ? r.Init.Id : null, r.Tokens, r.BatchSize == 0 ? D.BatchSize : r.BatchSize,
            r.Lr == 0 ? D.Lr : r.Lr, r.Beta1 == 0 ? D.Beta1 : r.Beta1, r.Beta2 == 0 ? D.Beta2 : r.Beta2,
            string.IsNullOrEmpty(r.LrSchedule) ? D.LrSchedule : r.LrSchedule, r.WarmupSteps, r.DecayFraction,
            r.ShuffleShards == 0 ? D.ShuffleShards : r.ShuffleShards, r.Seed,
            r.CheckpointEvery == 0 ? D.CheckpointEvery : r.CheckpointEvery, r.LogEvery == 0 ? D.LogEvery : r.LogEvery,
            r.AuxKCoefficient, r.AuxKCoefficient > 0 && r.AuxK == 0 ? D.AuxK : r.AuxK,
            r.DeadWindowTokens == 0 ? D.DeadWindowTokens : r.DeadWindowTokens, r.IncludeSpecial, r.ExtraFlops,
            string.IsNullOrEmpty(r.Id) ? null : ArtifactIds.Validate(r.Id, "id"),
            evalSet?.Id, r.EvalTokens == 0 ? D.EvalTokens : r.EvalTokens, r.EvalEvery, r.RenormalizeInit ?? D.RenormalizeInit);
    }

    public static ArtifactRef ActivationSetRef(string id) => new() { Kind = ActivationSetLayout.Kind, Id = id };
    public static ArtifactRef SaeRef(string id) => new() { Kind = SaeArtifacts.Kind, Id = id };
}
