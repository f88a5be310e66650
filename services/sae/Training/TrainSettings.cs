namespace Stitching.Sae.Training;

/// <summary>
/// What a new SAE looks like (scratch training; a warm start takes these from its init SAE).
/// NormalizeActivations is <see cref="Weights.SaeConfig.ExpectedAverageOnlyIn"/> or <see cref="Weights.SaeConfig.NoNormalization"/>.
/// </summary>
public sealed record SaeShape(string Architecture, int DSae, int K, bool ApplyBDecToInput, string NormalizeActivations,
    double SparsityCoefficient, double InitialThreshold, double Bandwidth);

/// <summary>
/// One SAE training run, every default filled in (sae.proto documents each field; <see cref="Defaults"/>
/// holds the values unset fields stand for, the paper's recipe where it has one). Artifacts are named by
/// id: the ActivationSet to train on, the held-out set, the init SAE of a warm start, the output.
/// </summary>
public sealed record TrainSettings(
    string ActivationSet, string Hook, SaeShape Sae, string? Init, long Tokens, int BatchSize,
    double Lr, double Beta1, double Beta2, string LrSchedule, long WarmupSteps, double DecayFraction,
    int ShuffleShards, ulong Seed, long CheckpointEvery, long LogEvery,
    double AuxKCoefficient, int AuxK, long DeadWindowTokens, bool IncludeSpecial, double ExtraFlops, string? Id,
    string? EvalActivationSet, long EvalTokens, long EvalEvery, bool RenormalizeInit)
{
    public static class Defaults
    {
        public const string Architecture = "topk";
        public const int K = 32;
        public const int BatchSize = 4096;
        public const double Lr = 1e-4, Beta1 = 0.9, Beta2 = 0.999;
        public const string LrSchedule = "constant";
        public const int ShuffleShards = 2;
        public const long CheckpointEvery = 200, LogEvery = 10, DeadWindowTokens = 1_000_000, EvalTokens = 16384;
        public const int AuxK = 512;
        public const double StandardL1 = 5e-3, JumpReluL0 = 1e-3;
        public const bool RenormalizeInit = true;
        public const string NormalizeActivations = Weights.SaeConfig.ExpectedAverageOnlyIn;

        /// <summary>Default sparsity coefficient of an architecture (L1 for standard, L0 for jumprelu, none for top-k).</summary>
        public static double SparsityCoefficient(string architecture) => architecture switch { "standard" => StandardL1, "jumprelu" => JumpReluL0, _ => 0 };
    }

    public TrainerOptions Trainer => new(Beta1, Beta2, AuxKCoefficient, AuxK, DeadWindowTokens);

    /// <summary>Steps of a run over <paramref name="setTokens"/> tokens (Tokens, or one pass when 0).</summary>
    public long Steps(long setTokens) => Math.Max(1, ((Tokens > 0 ? Tokens : setTokens) + BatchSize - 1) / BatchSize);
}
