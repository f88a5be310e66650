using Stitching.Core.Errors;

namespace Stitching.Stitch.Matching;

/// <summary>
/// Layer matching settings (defaults in one place; docs/metrics.md "Layer matching"). <see cref="Rule"/>
/// names how l_B is chosen per l_A: "heldout_fvu" (default), "heldout_svcca" or "svcca" (in-sample).
/// The default is the criterion that SAE transfer depends on: how well the affine maps predict each
/// stream from the other on unseen token types, weighted by variance as reconstruction is (SVCCA weighs
/// every canonical direction alike, however little variance it carries); docs/science.md has the runs.
/// </summary>
public sealed record MatchSettings(int Tokens, double Variance, string Rule, bool IncludeEmbeddings, IReadOnlyList<string> HooksA, IReadOnlyList<string> HooksB)
{
    public const int DefaultTokens = 16384;
    public const double DefaultVariance = 0.99;
    public const string HeldOutSvcca = "heldout_svcca", HeldOutFvu = "heldout_fvu", InSampleSvcca = "svcca";
    public const string DefaultRule = HeldOutFvu;
    public static readonly string[] Rules = [HeldOutSvcca, HeldOutFvu, InSampleSvcca];

    public static MatchSettings From(int tokens, double variance, string rule, bool includeEmbeddings, IReadOnlyList<string> hooksA, IReadOnlyList<string> hooksB)
    {
        tokens = tokens == 0 ? DefaultTokens : tokens;
        variance = variance == 0 ? DefaultVariance : variance;
        rule = string.IsNullOrEmpty(rule) ? DefaultRule : rule;
        if (tokens is < 8 or > 1 << 22) throw StitchingException.InvalidArgument("max_tokens", $"is {tokens}; it must lie in [8, {1 << 22}] (0 = default {DefaultTokens}).");
        if (!(variance is > 0 and <= 1)) throw StitchingException.InvalidArgument("svcca_variance", $"must lie in (0, 1] (default {DefaultVariance}).");
        if (!Rules.Contains(rule)) throw StitchingException.InvalidArgument("rule", $"is '{rule}'; use one of {string.Join(", ", Rules)} (default {DefaultRule}).");
        return new MatchSettings(tokens, variance, rule, includeEmbeddings, hooksA, hooksB);
    }
}
