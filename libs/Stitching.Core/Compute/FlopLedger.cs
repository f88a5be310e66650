namespace Stitching.Core.Compute;

/// <summary>One costed step: analytic FLOPs (docs/flops.md), tokens processed, wall seconds, what it produced ("kind/id").</summary>
public sealed record LedgerEntry(string Phase, double Flops, long Tokens = 0, double Seconds = 0, string Artifact = "");

/// <summary>
/// The FLOPs ledger of an experiment (the quantity the paper's warm-start claim is about): entries in the
/// order they were spent. An artifact's ledger holds what producing it cost, including the artifacts it
/// was built from when they count towards it: a stitch holds its fitting; a transferred SAE its stitch's
/// ledger; an SAE trained from an init that init's ledger plus its own training. Immutable.
/// </summary>
public sealed record FlopLedger(IReadOnlyList<LedgerEntry> Entries)
{
    public const string Extract = "extract", StitchFit = "stitch.fit", SaeTrain = "sae.train", Extra = "extra";

    public static readonly FlopLedger Empty = new([]);

    public double TotalFlops => Entries.Sum(e => e.Flops);

    /// <summary>FLOPs of the entries of one phase.</summary>
    public double FlopsOf(string phase) => Entries.Where(e => e.Phase == phase).Sum(e => e.Flops);

    public FlopLedger Add(LedgerEntry entry) => new([.. Entries, entry]);

    public FlopLedger Add(FlopLedger other) => new([.. Entries, .. other.Entries]);

    public static FlopLedger Of(params LedgerEntry[] entries) => new(entries);
}
