using System.Globalization;

namespace Stitching.Benchmarks;

/// <summary>
/// One figure of the suite: ours and the baseline measured in the same run, in one unit. <see cref="Target"/>
/// says what the ratio should reach (issue 16); the suite prints it beside the ratio and never fails on it.
/// For memory figures "higher" is worse: ours is the 4N peak, the baseline the N peak, the target a ceiling.
/// </summary>
public sealed record Figure(string Name, double Ours, double Baseline, string Unit, string Target, string Note = "")
{
    public double Ratio => Baseline > 0 ? Ours / Baseline : double.NaN;

    /// <summary>The summary line: <c>bench NAME: ours X UNIT, baseline Y UNIT, ratio R</c>.</summary>
    public string Summary => string.Create(CultureInfo.InvariantCulture,
        $"bench {Name}: ours {Format(Ours)} {Unit}, baseline {Format(Baseline)} {Unit}, ratio {Ratio:F2}");

    private static string Format(double v) => v >= 100 ? v.ToString("F0", CultureInfo.InvariantCulture) : v.ToString("G3", CultureInfo.InvariantCulture);
}
