using System.Text.Json.Nodes;
using SkiaSharp;
using Stitching.Reports;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Reports;

/// <summary>
/// Figures and report.html from a report's JSON: every section draws its figures, a figure moves with its data,
/// the page is self-contained with each figure after its section, and Debian's headless Chromium loads every image.
/// </summary>
[Trait("Category", "Integration")]
public class ReportRenderingTests
{
    private static readonly SKColor Blue = new(0x1f, 0x77, 0xb4), Orange = new(0xff, 0x7f, 0x0e);

    private static JsonArray Arr(params double[] v) => new(v.Select(x => (JsonNode)x).ToArray());

    /// <summary>A report with every section, shaped as the main job writes it (docs/report.md).</summary>
    internal static JsonObject FullReport(double steeredRate = 0.31)
    {
        JsonObject Curve(double start, double end) => new()
        {
            ["points"] = new JsonArray(Enumerable.Range(0, 12).Select(i => (JsonNode)new JsonObject
            {
                ["flops"] = 1e12 * Math.Pow(1.6, i), ["tokens"] = 65536L * i, ["explained_variance"] = end - (end - start) * Math.Exp(-i / 3.0),
            }).ToArray()),
        };
        JsonNode Width(int w) => new JsonObject
        {
            ["width"] = w, ["k"] = 16, ["measured_on"] = "heldout",
            ["power_law"] = new JsonObject { ["scratch_a"] = 3e3, ["scratch_beta"] = 0.3, ["warm_a"] = 800.0, ["warm_beta"] = 0.26 },
            ["scratch_curve"] = Curve(0.25, 0.95)["points"]!.DeepClone(), ["warm_curve"] = Curve(0.6, 0.955)["points"]!.DeepClone(),
            ["scratch_decoder_cosine"] = 0.2, ["warm_decoder_cosine"] = 0.8,
            ["decoder_cosine_histogram"] = new JsonObject
            {
                ["edges"] = Arr(Enumerable.Range(0, 41).Select(i => -1 + i / 20.0).ToArray()),
                ["scratch"] = Arr(Enumerable.Range(0, 40).Select(i => Math.Round(300 * Math.Exp(-Math.Pow((i - 24) / 3.0, 2)))).ToArray()),
                ["warm"] = Arr(Enumerable.Range(0, 40).Select(i => Math.Round(300 * Math.Exp(-Math.Pow((i - 36) / 2.0, 2)))).ToArray()),
            },
            ["savings"] = new JsonArray(new[] { (0.5, false, 0.5, 0.4), (0.9, false, 0.9, 0.3), (0.9, true, 0.86, 0.37), (0.95, true, 0.9, double.NaN) }.Select(r => (JsonNode)new JsonObject
            {
                ["threshold"] = r.Item1, ["relative_to_scratch_final"] = r.Item2, ["explained_variance"] = r.Item3, ["saving"] = double.IsNaN(r.Item4) ? null : r.Item4,
            }).ToArray()),
        };
        JsonNode Score(string probe, int k, double acc) => new JsonObject { ["probe"] = probe, ["k"] = k, ["accuracy"] = acc, ["ci_low"] = acc - 0.02, ["ci_high"] = acc + 0.02, ["test"] = 4096 };
        var scores = new JsonArray(Score("dense_a", 0, 0.82), Score("dense_b", 0, 0.84), Score("dense_transferred", 0, 0.81));
        foreach (var (probe, offset) in new[] { ("sparse_a", 0.0), ("sparse_transferred", 0.01), ("sparse_transferred_retrained", 0.015), ("sparse_native_b", -0.01), ("sparse_random", -0.2) })
            foreach (var k in new[] { 1, 2, 5, 10, 20, 50 }) scores.Add(Score(probe, k, Math.Min(0.99, 0.6 + 0.05 * Math.Log(k + 1) + offset)));
        return new JsonObject
        {
            ["schema"] = "stitching.paper-report/1",
            ["splice"] = new JsonArray(new[] { ("A", 5.2, 5.2), ("B", 4.9, 4.9), ("A->B", 5.6, 4.9), ("B->A", 5.9, 5.2) }.Select(r => (JsonNode)new JsonObject
            {
                ["run"] = r.Item1, ["ce"] = r.Item2, ["clean_ce"] = r.Item3, ["zero_ablation_ce"] = 9.0, ["mean_ablation_ce"] = 10.0, ["loss_recovered"] = 0.9,
            }).ToArray()),
            ["sae"] = new JsonArray(Width(768), Width(1536)),
            ["sae_eval"] = new JsonArray(new[] { ("source", 0.04), ("transfer", 0.52), ("scratch", 0.03), ("warm", 0.03), ("random", 0.65) }.Select(r => (JsonNode)new JsonObject
            {
                ["label"] = r.Item1, ["width"] = 768, ["ce_delta"] = r.Item2, ["kl"] = r.Item2 * 0.95, ["fvu"] = 0.1,
            }).ToArray()),
            ["probes"] = new JsonArray(new JsonObject { ["dataset"] = "brown:pos", ["tasks"] = new JsonArray(new JsonObject { ["name"] = "NOUN vs rest", ["test"] = 4096, ["scores"] = scores }) }),
            ["steering"] = new JsonObject
            {
                ["dataset"] = "brown:genre", ["target"] = "imaginative", ["judge_accuracy"] = 0.78, ["transfer_gap"] = 0.87,
                ["conditions"] = new JsonArray(new[] { ("a", 0.0), ("a_steered", 0.04), ("b", 0.08), ("b_steered_native", steeredRate), ("b_steered_transferred", 0.27) }.Select(c => (JsonNode)new JsonObject
                {
                    ["name"] = c.Item1, ["successes"] = (int)(c.Item2 * 48), ["trials"] = 48, ["rate"] = c.Item2, ["ci_low"] = Math.Max(0, c.Item2 - 0.1), ["ci_high"] = Math.Min(1, c.Item2 + 0.12),
                }).ToArray()),
            },
            ["features"] = new JsonObject
            {
                ["groups"] = new JsonArray(new[] { ("transferred", 0.4), ("structural", 0.58), ("semantic", 0.31), ("random SAE", 0.17) }.Select(g => (JsonNode)new JsonObject
                {
                    ["group"] = g.Item1, ["latents"] = 200, ["mean"] = g.Item2,
                    ["histogram"] = Arr(Enumerable.Range(0, 20).Select(i => Math.Round(40 * Math.Exp(-Math.Pow((-1 + (i + 0.5) / 10 - g.Item2) / 0.2, 2)))).ToArray()),
                }).ToArray()),
            },
        };
    }

    private static int Near(SKBitmap b, SKColor c, int tolerance = 24)
    {
        var n = 0;
        for (var y = 0; y < b.Height; y++)
            for (var x = 0; x < b.Width; x++)
            {
                var p = b.GetPixel(x, y);
                if (Math.Abs(p.Red - c.Red) + Math.Abs(p.Green - c.Green) + Math.Abs(p.Blue - c.Blue) <= tolerance) n++;
            }
        return n;
    }

    [Fact]
    public void Every_section_draws_its_figures_and_each_png_shows_data()
    {
        var figures = ReportFigures.All(FullReport());
        Assert.Equal(
            new[] { "splice-ce", "sae-eval", "ev-vs-flops-768", "decoder-rotation-768", "ev-vs-flops-1536", "decoder-rotation-1536", "savings", "probe-brown-pos-noun-vs-rest", "steering", "attribution-correlation" },
            figures.Select(f => f.Name));
        foreach (var f in figures)
        {
            using var bitmap = SKBitmap.Decode(f.Png);
            Assert.NotNull(bitmap);
            Assert.Equal((ReportFigures.Width, ReportFigures.Height), (bitmap.Width, bitmap.Height));
            Assert.True(Near(bitmap, Blue) > 30, $"{f.Name}: no series drawn in the first palette colour");
            Assert.False(string.IsNullOrWhiteSpace(f.Caption));
        }
        // Sections a report lacks draw nothing.
        var only = new JsonObject { ["steering"] = FullReport()["steering"]!.DeepClone() };
        Assert.Equal(["steering"], ReportFigures.All(only).Select(f => f.Name));
    }

    [Fact]
    public void A_bar_rises_with_its_value()
    {
        int TopOfBars(double rate)
        {
            using var b = SKBitmap.Decode(ReportFigures.All(new JsonObject { ["steering"] = FullReport(rate)["steering"]!.DeepClone() })[0].Png);
            for (var y = 0; y < b.Height; y++)
                for (var x = 0; x < b.Width; x++)
                    if (b.GetPixel(x, y) == Blue) return y;
            return b.Height;
        }
        Assert.True(TopOfBars(0.9) < TopOfBars(0.5) - 50, "a rate of 0.9 draws a taller bar than 0.5");
    }

    [Fact]
    public void Report_html_is_self_contained_and_chromium_loads_every_figure()
    {
        using var dir = new TempDir("report-html");
        var markdown = "# Stitching report: a -> b\n\nIntro.\n\n## Spliced next-token cross-entropy (paper Table 1)\n\n| run | CE |\n|---|---|\n| A | 5.2 |\n\n" +
                       "## SAE transfer and warm start\n\ntext\n\n## SAE evaluation on held-out text\n\n## Probe transfer\n\n## Steering transfer\n\n## Feature-level transfer\n\nend\n";
        var files = ReportWriter.Write(Path.Combine(dir.Path, "out", "paper.md"), "Stitching report", markdown, FullReport());
        Assert.Null(files.FiguresSkipped);
        Assert.Equal(10, files.Figures.Count);
        Assert.All(files.Figures, f => Assert.True(new FileInfo(f).Length > 5000, f));
        Assert.Equal(FullReport().ToJsonString(), JsonNode.Parse(File.ReadAllText(files.Json))!.ToJsonString());
        var html = File.ReadAllText(files.Html);
        Assert.DoesNotContain("src=\"http", html);
        Assert.DoesNotContain("<link", html);
        Assert.DoesNotContain("<script", html);
        Assert.Contains("<table>", html); // the Markdown tables are tables
        int At(string s) => html.IndexOf(s, StringComparison.Ordinal) is var i and >= 0 ? i : throw new Xunit.Sdk.XunitException($"missing {s}");
        Assert.True(At("Spliced next-token") < At("id=\"fig-splice-ce\"") && At("id=\"fig-splice-ce\"") < At(">SAE transfer and warm start"));
        Assert.True(At("Steering transfer</h2>") < At("id=\"fig-steering\"") && At("id=\"fig-steering\"") < At("Feature-level transfer</h2>"));
        Assert.Equal(10, html.Split("data:image/png;base64,").Length - 1);

        var (loaded, total) = Chromium.ImagesLoaded(files.Html, dir.Path);
        Assert.Equal((10, 10), (loaded, total));
        using var shot = SKBitmap.Decode(Chromium.Screenshot(files.Html, dir.Path, 1200, 2400));
        Assert.True(Near(shot, Blue) > 200 && Near(shot, Orange) > 50, "the screenshot shows the figures' series");
    }
}
