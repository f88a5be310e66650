namespace Stitching.Sae.Training;

/// <summary>
/// What one training step reports (definitions in docs/metrics.md, on the step's batch): MSE, FVU,
/// L0 and the dead fraction, with the cumulative step, tokens and ledger FLOPs after the step.
/// </summary>
public sealed record StepMetrics(long Step, long Tokens, double Flops, double Loss, double Mse, double Fvu, double L0, double DeadFraction)
{
    public double ExplainedVariance => 1 - Fvu;
}
