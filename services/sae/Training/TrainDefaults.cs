using Stitching.Core.Activations;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Errors;
using Stitching.Sae.Architectures;

namespace Stitching.Sae.Training;

/// <summary>Defaults (the paper's recipe where it has one) and validation of a training request.</summary>
public static class TrainDefaults
{
    public static TrainRequest Apply(TrainRequest given)
    {
        var r = given.Clone();
        r.Sae ??= new SaeSpec();
        if (string.IsNullOrEmpty(r.Sae.Architecture)) r.Sae.Architecture = "topk";
        var arch = SaeArchitectures.Get(r.Sae.Architecture, "sae.architecture");
        if (arch.UsesK && r.Sae.K == 0) r.Sae.K = 32;
        // SAELens's TopK recipe subtracts b_dec (initialised at the data mean) before encoding.
        r.Sae.ApplyBDecToInput ??= arch.UsesK;
        if (string.IsNullOrEmpty(r.Sae.NormalizeActivations)) r.Sae.NormalizeActivations = Model.SaeConfig.ExpectedAverageOnlyIn;
        r.RenormalizeInit ??= true;
        if (r.EvalTokens == 0) r.EvalTokens = 16384;
        if (r.Sae.SparsityCoefficient == 0) r.Sae.SparsityCoefficient = arch.Name switch { "standard" => 5e-3, "jumprelu" => 1e-3, _ => 0 };
        if (r.BatchSize == 0) r.BatchSize = 4096;
        if (r.Lr == 0) r.Lr = 1e-4;
        if (r.Beta1 == 0) r.Beta1 = 0.9;
        if (r.Beta2 == 0) r.Beta2 = 0.999;
        if (r.ShuffleShards == 0) r.ShuffleShards = 2;
        if (r.CheckpointEvery == 0) r.CheckpointEvery = 200;
        if (r.LogEvery == 0) r.LogEvery = 10;
        if (r.DeadWindowTokens == 0) r.DeadWindowTokens = 1_000_000;
        if (r.AuxKCoefficient > 0 && r.AuxK == 0) r.AuxK = 512;
        return r;
    }

    /// <summary>Checks the request against the store; returns the ActivationSet's manifest.</summary>
    public static ArtifactManifest Validate(TrainRequest r, ArtifactStore store)
    {
        if (r.ActivationSet is null || string.IsNullOrEmpty(r.ActivationSet.Id))
            throw StitchingException.InvalidArgument("activation_set", "name the ActivationSet to train on (kind \"activation-set\").");
        if (r.ActivationSet.Kind != ActivationSetLayout.Kind)
            throw StitchingException.InvalidArgument("activation_set.kind", $"is '{r.ActivationSet.Kind}'; training reads artifacts of kind \"{ActivationSetLayout.Kind}\".");
        var hasInit = r.Init is { Id.Length: > 0 };
        if (!hasInit && r.Sae.DSae <= 0) throw StitchingException.InvalidArgument("sae.d_sae", "set the number of latents (e.g. 16384), or give init to warm-start.");
        if (r.Sae.K < 0) throw StitchingException.InvalidArgument("sae.k", "must be positive.");
        if (r.BatchSize < 0) throw StitchingException.InvalidArgument("batch_size", "must be positive (default 4096).");
        if (r.Lr < 0) throw StitchingException.InvalidArgument("lr", "must be positive (default 1e-4).");
        if (r.Beta1 is < 0 or >= 1 || r.Beta2 is < 0 or >= 1) throw StitchingException.InvalidArgument("beta1", "Adam betas must lie in [0, 1).");
        if (r.Tokens < 0) throw StitchingException.InvalidArgument("tokens", "must be positive (0 = one pass over the set).");
        if (r.CheckpointEvery < 0 || r.LogEvery < 0) throw StitchingException.InvalidArgument("checkpoint_every", "checkpoint_every and log_every must be positive.");
        if (r.ShuffleShards < 0) throw StitchingException.InvalidArgument("shuffle_shards", "must be positive (default 2).");
        if (r.Sae.NormalizeActivations is not (Model.SaeConfig.NoNormalization or Model.SaeConfig.ExpectedAverageOnlyIn))
            throw StitchingException.InvalidArgument("sae.normalize_activations", $"is '{r.Sae.NormalizeActivations}'; use \"{Model.SaeConfig.ExpectedAverageOnlyIn}\" (default) or \"{Model.SaeConfig.NoNormalization}\".");
        if (r.EvalTokens < 0 || r.EvalEvery < 0) throw StitchingException.InvalidArgument("eval_tokens", "eval_tokens and eval_every must be positive (0 = default).");
        if (r.EvalActivationSet is { Id.Length: > 0 } ev)
        {
            if (ev.Kind != ActivationSetLayout.Kind)
                throw StitchingException.InvalidArgument("eval_activation_set.kind", $"is '{ev.Kind}'; held-out rows come from an artifact of kind \"{ActivationSetLayout.Kind}\".");
            if (!store.Exists(ev)) throw StitchingException.NotFound($"held-out activation set {ev.Id} does not exist; extract it first.", "eval_activation_set");
        }
        if (!store.Exists(r.ActivationSet))
            throw StitchingException.NotFound($"activation set {r.ActivationSet.Id} does not exist; run an extraction first.", "activation_set");
        if (hasInit && !store.Exists(r.Init))
            throw StitchingException.NotFound($"init SAE {r.Init.Kind}/{r.Init.Id} does not exist; transfer or import it first.", "init");
        return store.GetManifest(r.ActivationSet);
    }
}
