using System.Globalization;
using System.Text.Json.Nodes;
using ScottPlot;

namespace Stitching.Reports;

/// <summary>
/// The figures of a report, each drawn from report.json alone (docs/report.md keys), so any report, from the main
/// job or from one evaluation, renders the same way: spliced CE (Table 1), SAE evaluation (Table 2), explained
/// variance vs FLOPs for scratch vs warm with the fitted power laws, the saving per threshold, the decoder rotation
/// histogram, probe accuracy vs k, steering success rates with intervals, and attribution-correlation histograms.
/// Sections a report lacks draw nothing.
/// </summary>
public static class ReportFigures
{
    public const int Width = 720, Height = 440;
    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static IReadOnlyList<Figure> All(JsonObject report)
    {
        var figures = new List<Figure>();
        if (report["splice"] is JsonArray splice && splice.Count > 0) figures.Add(Splice(splice));
        if (report["sae_eval"] is JsonArray table2 && table2.Count > 0) figures.Add(SaeEvaluation(table2));
        foreach (var width in report.List("sae"))
        {
            if (width.List("scratch_curve").Count > 0 || width.List("warm_curve").Count > 0) figures.Add(Curves(width));
            if (width["decoder_cosine_histogram"] is JsonObject) figures.Add(Rotation(width));
        }
        if (report.List("sae").Any(w => w.List("savings").Count > 0)) figures.Add(Savings(report.List("sae")));
        foreach (var set in report.List("probes"))
            foreach (var task in set.List("tasks"))
                figures.Add(ProbeTask(set.S("dataset"), task));
        if (report["steering"] is JsonObject steering && steering.List("conditions").Count > 0) figures.Add(Steering(steering));
        if (report["features"] is JsonObject features && features.List("groups").Count > 0) figures.Add(Features(features));
        if (report.List("sweep_rows").Any(r => r.List("savings").Count > 0)) figures.Add(SweepSavings(report.List("sweep_rows")));
        return figures;
    }

    private static Plot NewPlot(string title, string x, string y)
    {
        var p = new Plot();
        p.Title(title, 15);
        p.XLabel(x, 13);
        p.YLabel(y, 13);
        return p;
    }

    private static Figure Done(Plot p, string section, string name, string caption) => new(section, name, caption, p.GetImageBytes(Width, Height, ImageFormat.Png));

    private static string F(double v, string format = "F3") => double.IsNaN(v) ? "n/a" : v.ToString(format, Inv);

    /// <summary>Bars at integer positions labelled by category, grouped: one series per group, offset within the slot.</summary>
    private static void GroupedBars(Plot p, IReadOnlyList<string> categories, IReadOnlyList<(string Name, double[] Values, double[]? Low, double[]? High)> series)
    {
        var n = series.Count;
        var size = 0.8 / n;
        for (var s = 0; s < n; s++)
        {
            var bars = new List<Bar>();
            for (var c = 0; c < categories.Count; c++)
            {
                var v = series[s].Values[c];
                if (double.IsNaN(v)) continue;
                bars.Add(new Bar { Position = c - 0.4 + size * (s + 0.5), Value = v, Size = size * 0.92, FillColor = Palette.GetColor(s), ValueLabel = F(v, v >= 100 ? "F0" : v >= 10 ? "F1" : "F2") });
            }
            var plot = p.Add.Bars(bars.ToArray());
            plot.LegendText = series[s].Name;
            plot.ValueLabelStyle.FontSize = 9;
            if (series[s].Low is { } low && series[s].High is { } high)
            {
                var idx = Enumerable.Range(0, categories.Count).Where(c => !double.IsNaN(series[s].Values[c])).ToArray();
                var eb = p.Add.ErrorBar(idx.Select(c => c - 0.4 + size * (s + 0.5)).ToArray(), idx.Select(c => series[s].Values[c]).ToArray(),
                    idx.Select(c => series[s].Values[c] - low[c]).ToArray());
                eb.YErrorPositive = idx.Select(c => high[c] - series[s].Values[c]).ToArray();
                eb.YErrorNegative = idx.Select(c => series[s].Values[c] - low[c]).ToArray();
                eb.Color = Colors.Black;
            }
        }
        p.Axes.Bottom.SetTicks(Enumerable.Range(0, categories.Count).Select(i => (double)i).ToArray(), categories.ToArray());
        p.Axes.Margins(bottom: 0);
        if (n > 1) p.ShowLegend(Alignment.UpperRight);
    }

    /// <summary>Table 1: next-token CE of each spliced run against the clean CE of the model that finishes.</summary>
    public static Figure Splice(JsonArray rows)
    {
        var p = NewPlot("Spliced next-token cross-entropy (Table 1)", "run", "cross-entropy (nats)");
        var runs = rows.Select(r => r.S("run")).ToList();
        GroupedBars(p, runs,
        [
            ("spliced", rows.Select(r => r.D("ce")).ToArray(), null, null),
            ("clean (finishing model)", rows.Select(r => r.D("clean_ce")).ToArray(), null, null),
            ("zero ablation", rows.Select(r => r.D("zero_ablation_ce")).ToArray(), null, null),
        ]);
        return Done(p, "splice", "splice-ce", "Next-token CE of each run (A, B, the stitched runs and round trips) next to the clean CE of the model that finishes it and its zero-ablation CE at the splice point.");
    }

    /// <summary>Table 2: CE delta (spliced - clean) and FVU per SAE and width.</summary>
    public static Figure SaeEvaluation(JsonArray rows)
    {
        var p = NewPlot("SAE spliced into its model (Table 2)", "SAE (width)", "CE spliced - clean (nats)");
        var labels = rows.Select(r => $"{r.S("label")}\n{r.D("width"):F0}").ToList();
        GroupedBars(p, labels, [("CE delta", rows.Select(r => r.D("ce_delta")).ToArray(), null, null), ("KL(clean || spliced)", rows.Select(r => r.D("kl")).ToArray(), null, null)]);
        return Done(p, "sae_eval", "sae-eval", "Increase in next-token CE (and KL) when each SAE's reconstruction replaces its hook: A's source SAE on A, its zero-shot transfer, B's scratch and warm SAEs, and a random SAE of the same shape on B.");
    }

    /// <summary>Explained variance against FLOPs (log axis), scratch vs warm, with the fitted power laws EV = 1 - A C^-beta.</summary>
    public static Figure Curves(JsonNode width)
    {
        var w = width.D("width");
        var p = NewPlot($"Width {w:F0}: explained variance vs FLOPs", "FLOPs (log scale)", $"explained variance ({(width.S("measured_on") is "" ? "heldout" : width.S("measured_on"))})");
        var law = width["power_law"];
        var all = new List<double>();
        foreach (var (name, key, fitA, fitBeta, color) in new[] { ("scratch", "scratch_curve", "scratch_a", "scratch_beta", 0), ("warm start", "warm_curve", "warm_a", "warm_beta", 1) })
        {
            var pts = width.List(key).Select(pt => (X: pt.D("flops"), Y: pt.D("explained_variance"))).Where(pt => pt.X > 0 && !double.IsNaN(pt.Y)).ToArray();
            if (pts.Length == 0) continue;
            var s = p.Add.Scatter(pts.Select(pt => Math.Log10(pt.X)).ToArray(), pts.Select(pt => pt.Y).ToArray(), Palette.GetColor(color));
            s.LegendText = name;
            s.MarkerSize = 4;
            all.AddRange(pts.Select(pt => pt.X));
            var (a, beta) = (law.D(fitA), law.D(fitBeta));
            if (!double.IsNaN(a) && !double.IsNaN(beta))
            {
                var xs = Enumerable.Range(0, 60).Select(i => Math.Log10(pts.Where(pt => pt.X > 0).Min(pt => pt.X)) + i / 59.0 * (Math.Log10(pts.Max(pt => pt.X)) - Math.Log10(pts.Where(pt => pt.X > 0).Min(pt => pt.X)))).ToArray();
                var fit = p.Add.ScatterLine(xs, xs.Select(x => 1 - a * Math.Pow(10, -beta * x)).ToArray(), Palette.GetColor(color));
                fit.LinePattern = LinePattern.Dashed;
                fit.LegendText = $"{name} fit: FVU = {a.ToString("G3", Inv)} C^-{beta.ToString("F3", Inv)}";
            }
        }
        foreach (var row in width.List("savings").Where(r => r.B("relative_to_scratch_final")))
        {
            p.Add.HorizontalLine(row.D("explained_variance"), 1, Colors.Gray, LinePattern.Dotted);
        }
        if (all.Count > 0) LogTicks(p, Math.Log10(all.Min()), Math.Log10(all.Max()));
        // the measured curves set the view; a fit extrapolated below them is cut off
        var evs = new[] { "scratch_curve", "warm_curve" }.SelectMany(k => width.List(k)).Select(pt => pt.D("explained_variance")).Where(v => !double.IsNaN(v)).ToArray();
        if (evs.Length > 0) p.Axes.SetLimitsY(evs.Min() - 0.05, Math.Min(1.02, evs.Max() + 0.05));
        p.ShowLegend(Edge.Bottom);
        return Done(p, "sae", $"ev-vs-flops-{w:F0}", $"Held-out explained variance of B's SAE (width {w:F0}) against cumulative FLOPs (the warm run's include the stitch's), from scratch and from the transferred SAE; dashed: FVU ~ A C^-beta fitted on the training log; dotted: the thresholds of the savings table.");
    }

    private static void LogTicks(Plot p, double lo, double hi)
    {
        var ticks = new List<(double, string)>();
        for (var e = (int)Math.Floor(lo); e <= (int)Math.Ceiling(hi); e++)
            foreach (var m in hi - lo < 1.5 ? new[] { 1, 2, 5 } : [1])
            {
                var x = e + Math.Log10(m);
                if (x >= lo - 0.05 && x <= hi + 0.05) ticks.Add((x, $"{m}e{e}"));
            }
        if (ticks.Count >= 2) p.Axes.Bottom.SetTicks(ticks.Select(t => t.Item1).ToArray(), ticks.Select(t => t.Item2).ToArray());
    }

    /// <summary>The saving (scratch - warm) / scratch at each threshold, one series per width.</summary>
    public static Figure Savings(IReadOnlyList<JsonNode> widths)
    {
        var p = NewPlot("FLOPs saved by the warm start", "threshold", "saving (% of scratch's FLOPs)");
        var rows = widths[0].List("savings");
        var labels = rows.Select(r => r.B("relative_to_scratch_final") ? $"{r.D("threshold") * 100:F0}% of final" : $"EV {r.D("threshold"):F2}").ToList();
        GroupedBars(p, labels, widths.Select(w => ($"width {w.D("width"):F0}",
            labels.Select((_, i) => i < w.List("savings").Count ? w.List("savings")[i].D("saving") * 100 : double.NaN).ToArray(), (double[]?)null, (double[]?)null)).ToList());
        p.Add.HorizontalLine(0, 1, Colors.Black);
        return Done(p, "sae", "savings", "Relative FLOPs saving of the warm start at each explained-variance threshold (absolute, then fractions of scratch's final EV); a missing bar means one of the runs never reached the threshold.");
    }

    /// <summary>A sweep's savings: one group per point and width, one bar per threshold.</summary>
    public static Figure SweepSavings(IReadOnlyList<JsonNode> rows)
    {
        var p = NewPlot("FLOPs saved by the warm start across the sweep", "point (#index, SAE width, k)", "saving (% of scratch's FLOPs)");
        var first = rows.First(r => r.List("savings").Count > 0).List("savings");
        var thresholds = first.Select(r => r.B("relative_to_scratch_final") ? $"{r.D("threshold") * 100:F0}% of final" : $"EV {r.D("threshold"):F2}").ToList();
        // Point names are long ("sae.k=8,sae.width_multiples=2"): label by index, width and k; the table names them.
        var labels = rows.Select(r => $"#{r.D("index"):F0} w{r.D("width"):F0} k{r.D("k"):F0}").ToList();
        GroupedBars(p, labels, thresholds.Select((t, i) => (t, rows.Select(r => i < r.List("savings").Count ? r.List("savings")[i].D("saving") * 100 : double.NaN).ToArray(), (double[]?)null, (double[]?)null)).ToList());
        p.Add.HorizontalLine(0, 1, Colors.Black);
        p.Legend.Alignment = Alignment.LowerRight; // the groups' bars rise above zero, mostly
        return Done(p, "points", "sweep-savings", "Relative FLOPs saving of the warm start per sweep point and SAE width, at each explained-variance threshold; a missing bar means a run never reached the threshold.");
    }

    /// <summary>Histogram over latents of cos(initial decoder row, final decoder row), scratch vs warm.</summary>
    public static Figure Rotation(JsonNode width)
    {
        var w = width.D("width");
        var h = width["decoder_cosine_histogram"]!;
        var edges = h.Numbers("edges");
        var p = NewPlot($"Width {w:F0}: decoder rotation during training", "cos(initial row, final row)", "latents");
        foreach (var (name, key, color) in new[] { ("scratch", "scratch", 0), ("warm start", "warm", 1) })
        {
            var counts = h.Numbers(key);
            if (counts.Length == 0 || counts.Length + 1 != edges.Length) continue;
            var xs = new List<double>();
            var ys = new List<double>();
            for (var i = 0; i < counts.Length; i++) { xs.Add(edges[i]); ys.Add(counts[i]); xs.Add(edges[i + 1]); ys.Add(counts[i]); }
            var s = p.Add.ScatterLine(xs.ToArray(), ys.ToArray(), Palette.GetColor(color));
            s.LineWidth = 2;
            s.LegendText = $"{name} (mean {F(width.D(key + "_decoder_cosine"))})";
        }
        p.ShowLegend(Alignment.UpperLeft);
        return Done(p, "sae", $"decoder-rotation-{w:F0}", $"How far each latent's decoder row moved during B's training (width {w:F0}): scratch from its random init, warm start from the transferred SAE.");
    }

    private static readonly (string Probe, string Label)[] SparseProbes =
    [
        ("sparse_a", "SAE on A"), ("sparse_transferred", "transferred, A's probe (no retrain)"), ("sparse_transferred_retrained", "transferred, retrained"),
        ("sparse_native_b", "B's own SAE"), ("sparse_random", "random latents"),
    ];

    private static readonly (string Probe, string Label)[] DenseProbes = [("dense_a", "dense A"), ("dense_b", "dense B"), ("dense_transferred", "dense A -> B (P_down)")];

    /// <summary>Probe accuracy against k for the sparse probes, with the dense probes as horizontal lines and 95% intervals.</summary>
    public static Figure ProbeTask(string dataset, JsonNode task)
    {
        var name = task.S("name");
        var p = NewPlot($"{dataset}: {name}", "k (top latents, log scale)", "test accuracy");
        var scores = task.List("scores");
        var color = 0;
        foreach (var (probe, label) in SparseProbes)
        {
            var pts = scores.Where(s => s.S("probe") == probe && s.D("k") > 0).OrderBy(s => s.D("k")).ToArray();
            if (pts.Length == 0) { color++; continue; }
            var xs = pts.Select(s => Math.Log10(s.D("k"))).ToArray();
            var ys = pts.Select(s => s.D("accuracy")).ToArray();
            var c = Palette.GetColor(color++);
            var line = p.Add.Scatter(xs, ys, c);
            line.LegendText = label;
            line.MarkerSize = 5;
            var eb = p.Add.ErrorBar(xs, ys, pts.Select(s => s.D("accuracy") - s.D("ci_low")).ToArray());
            eb.YErrorPositive = pts.Select(s => s.D("ci_high") - s.D("accuracy")).ToArray();
            eb.YErrorNegative = pts.Select(s => s.D("accuracy") - s.D("ci_low")).ToArray();
            eb.Color = c;
        }
        var patterns = new[] { LinePattern.Solid, LinePattern.Dashed, LinePattern.Dotted };
        var d = 0;
        foreach (var (probe, label) in DenseProbes)
        {
            var s = scores.FirstOrDefault(x => x.S("probe") == probe);
            if (s is null) { d++; continue; }
            var line = p.Add.HorizontalLine(s.D("accuracy"), 1.5f, Colors.Black.WithAlpha(0.7), patterns[d++ % 3]);
            line.LegendText = $"{label} {F(s.D("accuracy"))}";
        }
        var ks = scores.Where(s => s.D("k") > 0).Select(s => s.D("k")).Distinct().Order().ToArray();
        if (ks.Length > 0) p.Axes.Bottom.SetTicks(ks.Select(Math.Log10).ToArray(), ks.Select(k => k.ToString("F0", Inv)).ToArray());
        p.Axes.SetLimitsY(0.4, 1.02);
        p.Axes.Left.SetTicks([0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0], ["0.4", "0.5 (chance)", "0.6", "0.7", "0.8", "0.9", "1.0"]);
        p.ShowLegend(Edge.Right);
        return Done(p, "probes", $"probe-{Slug(dataset)}-{Slug(name)}",
            $"{dataset}, {name}: balanced test accuracy of sparse probes on the top-k latents of A's SAE (chosen on A), on B through the transferred SAE with A's probe and retrained, B's own SAE and random latents; horizontal lines: dense probes. Bars: 95% Wilson intervals over {task.D("test"):F0} test examples.");
    }

    /// <summary>Steering success per condition with 95% Clopper-Pearson intervals.</summary>
    public static Figure Steering(JsonObject e)
    {
        var p = NewPlot($"Steering towards '{e.S("target")}' ({e.S("dataset")})", "condition", "judged as the concept");
        var conditions = e.List("conditions");
        var labels = conditions.Select(c => c.S("name") switch
        {
            "a" => "A", "a_steered" => "A + v_A", "b" => "B", "b_steered_native" => "B + v_B", "b_steered_transferred" => "B + v_A P_up", var n => n,
        }).ToList();
        GroupedBars(p, labels, [("rate", conditions.Select(c => c.D("rate")).ToArray(), conditions.Select(c => c.D("ci_low")).ToArray(), conditions.Select(c => c.D("ci_high")).ToArray())]);
        p.Axes.SetLimitsY(0, 1);
        return Done(p, "steering", "steering", $"Rate of generations the judge (accuracy {F(e.D("judge_accuracy"))}) assigns to the concept, unsteered and steered with each model's own direction and with A's direction moved to B; clipped transfer gap {F(e.D("transfer_gap"))}. Bars: 95% Clopper-Pearson intervals over {conditions.FirstOrDefault().D("trials"):F0} prompts.");
    }

    /// <summary>Histograms of per-latent attribution correlation: structural, semantic, all transferred latents and the random SAE.</summary>
    public static Figure Features(JsonObject e)
    {
        var p = NewPlot("Attribution correlation, A vs transferred B", "Pearson r over tokens (per latent)", "fraction of latents");
        var color = 0;
        foreach (var g in e.List("groups"))
        {
            var counts = g.Numbers("histogram");
            var total = counts.Sum();
            if (counts.Length == 0 || total == 0) { color++; continue; }
            var bin = 2.0 / counts.Length;
            var xs = new List<double>();
            var ys = new List<double>();
            for (var i = 0; i < counts.Length; i++) { xs.Add(-1 + i * bin); ys.Add(counts[i] / total); xs.Add(-1 + (i + 1) * bin); ys.Add(counts[i] / total); }
            var s = p.Add.ScatterLine(xs.ToArray(), ys.ToArray(), Palette.GetColor(color++));
            s.LineWidth = 2;
            if (g.S("group") == "transferred") s.LinePattern = LinePattern.Dashed;
            s.LegendText = $"{g.S("group")} (n {g.D("latents"):F0}, mean {F(g.D("mean"))})";
        }
        p.ShowLegend(Alignment.UpperLeft);
        return Done(p, "features", "attribution-correlation", "Per-latent Pearson correlation between a latent's direct logit attribution on A and its transferred twin's on B, for structural and semantic latents (from syntax-preserving rewrites), all latents, and a random SAE transferred through the same stitch; each histogram normalised to its group.");
    }

    private static string Slug(string s) => new(s.ToLowerInvariant().Replace(".", "period").Select(c => char.IsLetterOrDigit(c) ? c : '-').ToArray());
}
