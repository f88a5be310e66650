namespace Stitching.Stitch.Matching;

/// <summary>
/// What layer matching measured: per pair (hook of A, hook of B) in-sample SVCCA, held-out SVCCA, linear
/// CKA and held-out least-squares FVU up (A -> B) and down (B -> A); matrices row-major [A, B]. Best[i] is
/// the index of the B hook the rule chose for A hook i.
/// </summary>
public sealed record LayerMatch(
    IReadOnlyList<string> HooksA, IReadOnlyList<string> HooksB, double[] Svcca, double[] HeldOutSvcca, double[] Cka,
    double[] FvuUp, double[] FvuDown, int[] Best, MatchSettings Settings, int Tokens, int FitTokens, int HeldOutTokens)
{
    /// <summary>The rule's score (higher is better) of pair (a, b).</summary>
    public static double Score(string rule, double svcca, double heldOutSvcca, double fvuUp, double fvuDown) => rule switch
    {
        MatchSettings.InSampleSvcca => svcca,
        MatchSettings.HeldOutFvu => -(fvuUp + fvuDown) / 2,
        _ => heldOutSvcca,
    };
}
