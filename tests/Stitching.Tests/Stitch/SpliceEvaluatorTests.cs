using Stitching.Core.Forward;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Tensors;
using Stitching.Stitch.Splice;

namespace Stitching.Tests.Stitch;

/// <summary>
/// The spliced-evaluation bookkeeping in isolation: which forward passes run, how the stitch moves the
/// captured streams, token weighting across uneven batches, the mean used for mean ablation and how
/// loss recovered is composed. The "models" are arithmetic so every expected value is worked by hand.
/// </summary>
[Trait("Category", "Unit")]
public class SpliceEvaluatorTests
{
    /// <summary>
    /// Model "a" has width 2, "b" width 3. A captured stream is h[t, j] = id_t (j + 1). A call's mean loss:
    /// the mean of the start residual when the pass starts mid-model; 50 under zero ablation; 100 + sum(mean)
    /// under mean ablation; 7 (A->B->A) or 8 (B->A->B) for round trips; else mean(ids) (+1 for "b").
    /// </summary>
    private sealed class ArithmeticModels : ILanguageModels
    {
        public List<ForwardCall> Calls { get; } = [];

        public Task<ForwardOutcome> ForwardAsync(ForwardCall c, CancellationToken ct)
        {
            Calls.Add(c);
            var width = c.Model.Model == "a" ? 2 : 3;
            var ids = c.Rows.SelectMany(r => r).ToArray();
            HostTensor? captured = null;
            if (c.Capture is not null)
                captured = HostTensor.FromFloats("h", ids.SelectMany(id => Enumerable.Range(0, width).Select(j => (float)(id * (j + 1)))).ToArray(), c.Rows.Length, c.Rows[0].Length, width);
            var loss = c switch
            {
                { Start: { } s } => s.Residual.ToFloats().Average(v => (double)v),
                { Edit: AblateEdit { Mean: null } } => 50,
                { Edit: AblateEdit { Mean: { } m } } => 100 + m.ToFloats().Sum(v => (double)v),
                { Edit: RoundTripEdit r } => r.Up ? 7 : 8,
                _ => ids.Average() + (c.Model.Model == "b" ? 1 : 0),
            };
            return Task.FromResult(new ForwardOutcome(loss, captured));
        }
    }

    // P_up [2, 3] copies both coordinates and b_up adds 1 to the third; P_down [3, 2] keeps the first two, b_down adds 0.5.
    private static readonly HostTensor[] Stitch =
    [
        HostTensor.FromFloats("P_up", [1, 0, 0, 0, 1, 0], 2, 3), HostTensor.FromFloats("b_up", [0, 0, 1], 3),
        HostTensor.FromFloats("P_down", [1, 0, 0, 1, 0, 0], 3, 2), HostTensor.FromFloats("b_down", [0.5f, 0.5f], 2),
    ];

    private static readonly int[][] Rows = [[1, 2, 3], [4, 5, 6], [7, 8, 9]];

    [Fact]
    public async Task Runs_weights_and_floors_match_a_hand_computation()
    {
        using var worker = new TorchWorker();
        var models = new ArithmeticModels();
        var settings = new SpliceSettings(new LanguageModelRef("a"), new LanguageModelRef("b"), 1, 2, BatchSize: 2);
        var result = await new SpliceEvaluator(worker).EvaluateAsync(models, Stitch, Rows, settings, default);

        // Batches {row 0, row 1} and {row 2} predict 4 and 2 tokens: CE = (4 x batch 1 + 2 x batch 2) / 6.
        static double Weighted(double first, double second) => (4 * first + 2 * second) / 6;
        var ceA = Weighted(3.5, 8);                       // mean ids 3.5 and 8 -> 5
        var ceB = ceA + 1;                                // 6
        var aToB = Weighted(3.5 + 1.0 / 3, 8 + 1.0 / 3);  // T_up(h) = [id, 2 id, 1]: mean id + 1/3
        var bToA = Weighted(1.5 * 3.5 + 0.5, 1.5 * 8 + 0.5); // T_down(h) = [id + 0.5, 2 id + 0.5]: mean 1.5 id + 0.5
        var meanA = 100 + (5 + 10);                       // mean stream over all 9 tokens (ids 1..9): [5, 10]
        var meanB = 100 + (5 + 10 + 15);
        var expected = new (string Run, string Finisher, double Ce, double Clean, double Mean)[]
        {
            ("A", "A", ceA, ceA, meanA), ("B", "B", ceB, ceB, meanB), ("A->B", "B", aToB, ceB, meanB),
            ("B->A", "A", bToA, ceA, meanA), ("A->B->A", "A", 7, ceA, meanA), ("B->A->B", "B", 8, ceB, meanB),
        };
        Assert.Equal(expected.Select(e => (e.Run, e.Finisher)), result.Rows.Select(r => (r.Run, r.Finisher)));
        foreach (var (e, r) in expected.Zip(result.Rows))
        {
            Assert.Equal(e.Ce, r.Ce, 5);
            Assert.Equal(e.Clean, r.CleanCe, 5);
            Assert.Equal(50, r.ZeroAblationCe, 9);
            Assert.Equal(e.Mean, r.MeanAblationCe, 4);
            Assert.Equal((e.Mean - e.Ce) / (e.Mean - e.Clean), r.LossRecovered, 5);
        }
        Assert.Equal((3, 9L), (result.Sequences, result.Tokens));

        // The splices start at the right model and layer; round trips and floors edit the splice points.
        Assert.All(models.Calls.Where(c => c.Start is not null && c.Model.Model == "b"), c => Assert.Equal(2, c.Start!.Value.Layer));
        Assert.All(models.Calls.Where(c => c.Start is not null && c.Model.Model == "a"), c => Assert.Equal(1, c.Start!.Value.Layer));
        Assert.All(models.Calls.Where(c => c.Edit is not null), c => Assert.Equal(c.Model.Model == "a" ? "blocks.1.hook_resid_pre" : "blocks.2.hook_resid_pre", c.Edit!.Hook));
        Assert.Equal(2 * 10, models.Calls.Count); // per batch: 2 clean + 8 spliced or ablated passes
    }

    [Fact]
    public async Task A_stitch_between_other_widths_is_a_failed_precondition()
    {
        using var worker = new TorchWorker();
        var settings = new SpliceSettings(new LanguageModelRef("b"), new LanguageModelRef("a"), 1, 1, BatchSize: 8);
        var e = await Assert.ThrowsAsync<StitchingException>(() => new SpliceEvaluator(worker).EvaluateAsync(new ArithmeticModels(), Stitch, Rows, settings, default));
        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("width", e.Message);
    }
}
