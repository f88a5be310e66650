using System.Text;
using Stitching.Contracts.Stitch.V1;

namespace Stitching.Eval.Reports;

/// <summary>Readable text tables for stitch results: SVCCA matrices, fit summaries, the Table-1 CE table.</summary>
public static class StitchTables
{
    /// <summary>A [rows, columns] matrix with short hook labels; '*' marks each row's best column.</summary>
    public static string Matrix(IReadOnlyList<string> rows, IReadOnlyList<string> columns, IReadOnlyList<double> values, IReadOnlyList<int>? best)
    {
        var sb = new StringBuilder($"{"",-10}");
        foreach (var c in columns) sb.Append($"{Short(c),9}");
        for (var i = 0; i < rows.Count; i++)
        {
            sb.Append('\n').Append($"{Short(rows[i]),-10}");
            for (var j = 0; j < columns.Count; j++) sb.Append($"{values[i * columns.Count + j],8:F3}{(best is not null && best[i] == j ? "*" : " ")}");
        }
        return sb.ToString();
    }

    public static string Fit(FitResult r)
    {
        var sb = new StringBuilder($"stitch {r.Stitch.Id} ({r.Method}{(string.IsNullOrEmpty(r.Solver) ? "" : ", " + r.Solver)}{(r.Reused ? ", reused" : "")}): {r.TrainTokens} train tokens, {r.HeldoutTokens} held out, {r.Flops:E3} FLOPs, {r.Seconds:F2} s");
        sb.Append("\nheld-out     FVU        MSE");
        foreach (var d in new[] { "up", "down", "up_down", "down_up" })
            sb.Append($"\n{d,-10} {r.Metrics.GetValueOrDefault("fvu_" + d, double.NaN),8:F4} {r.Metrics.GetValueOrDefault("mse_" + d, double.NaN),10:G5}");
        return sb.ToString();
    }

    public static string Splice(EvaluateSpliceResponse r)
    {
        var sb = new StringBuilder($"next-token CE on {r.Sequences} rows, {r.Tokens} tokens ({r.Seconds:F1} s)\n");
        sb.Append($"{"run",-9}{"CE",8}{"clean",8}{"zero-abl",10}{"mean-abl",10}{"recovered",11}");
        foreach (var row in r.Rows)
            sb.Append($"\n{row.Run,-9}{row.Ce,8:F3}{row.CleanCe,8:F3}{row.ZeroAblationCe,10:F3}{row.MeanAblationCe,10:F3}{row.LossRecovered,11:F3}");
        sb.Append("\n(clean = the finishing model's own CE; recovered = (mean-abl - CE) / (mean-abl - clean))");
        return sb.ToString();
    }

    private static string Short(string hook) => hook.Replace("blocks.", "L").Replace(".hook_resid_pre", "").Replace(".hook_", ".");
}
