using Stitching.Core.Compute;
using Proto = Stitching.Contracts.Common.V1;

namespace Stitching.Core.Artifacts;

/// <summary>The ledger's wire and manifest form (common/v1 FlopLedger), mapped at the edge.</summary>
public static class LedgerProto
{
    public static Proto.FlopLedger ToProto(this FlopLedger ledger)
    {
        var p = new Proto.FlopLedger { TotalFlops = ledger.TotalFlops };
        p.Entries.AddRange(ledger.Entries.Select(e => new Proto.LedgerEntry { Phase = e.Phase, Flops = e.Flops, Tokens = e.Tokens, Seconds = e.Seconds, Artifact = e.Artifact }));
        return p;
    }

    public static FlopLedger FromProto(Proto.FlopLedger? p) =>
        p is null ? FlopLedger.Empty : new(p.Entries.Select(e => new LedgerEntry(e.Phase, e.Flops, e.Tokens, e.Seconds, e.Artifact)).ToList());

    /// <summary>
    /// An artifact's ledger. Artifacts stored before manifests carried ledgers are read from the metrics they
    /// had then: a stitch's "flops" (its fitting), an SAE's "stitch_flops" (its init's stitch) and "flops".
    /// Imports and uploads cost nothing to count: empty.
    /// </summary>
    public static FlopLedger Ledger(this Proto.ArtifactManifest m)
    {
        if (m.Ledger is not null) return FromProto(m.Ledger);
        var metrics = m.Metrics;
        var artifact = m.Ref is null ? "" : m.Ref.Display();
        switch (m.Ref?.Kind)
        {
            case ArtifactKinds.Stitch when metrics.TryGetValue("flops", out var fit):
                return FlopLedger.Of(new LedgerEntry(FlopLedger.StitchFit, fit, (long)metrics.GetValueOrDefault("tokens"), metrics.GetValueOrDefault("seconds"), artifact));
            case ArtifactKinds.Sae:
                var stitch = metrics.GetValueOrDefault("stitch_flops");
                var ledger = stitch > 0 ? FlopLedger.Of(new LedgerEntry(FlopLedger.StitchFit, stitch)) : FlopLedger.Empty;
                return metrics.TryGetValue("flops", out var total) && total > stitch
                    ? ledger.Add(new LedgerEntry(FlopLedger.SaeTrain, total - stitch, (long)metrics.GetValueOrDefault("tokens"), 0, artifact))
                    : ledger;
            default:
                return FlopLedger.Empty;
        }
    }
}
