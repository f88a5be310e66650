namespace Stitching.Sae.Evaluation;

/// <summary>
/// One held-out evaluation of a run (heldout_log.json): after <paramref name="Step"/> steps (0 = the
/// initial weights), at the run's cumulative tokens and ledger FLOPs; MSE (raw units), FVU and L0 on the
/// fixed held-out batch.
/// </summary>
public sealed record EvalRow(long Step, long Tokens, double Flops, double Mse, double Fvu, double L0)
{
    public double ExplainedVariance => 1 - Fvu;
}
