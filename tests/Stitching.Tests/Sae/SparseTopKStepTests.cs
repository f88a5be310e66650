using Stitching.Sae.Data;
using Stitching.Sae.Training;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Tests.Sae;

/// <summary>
/// The sparse TopK / BatchTopK step (gather of the kept decoder rows, index_add backward) against the dense
/// autograd step as the reference: from the same state (weights, Adam moments, threshold, counters) on the same
/// batch, every weight, moment, counter and metric equal after the step within float tolerance, at each of
/// several steps along the dense run. (Free-running, the two drift apart by rounding until a near tie at the
/// selection boundary flips one kept entry, which BatchTopK over a whole batch meets within a few steps; so each
/// step starts the sparse trainer from the dense one's state.) Adam's step lr m^/(sqrt(v^) + eps) is
/// ill-conditioned where sqrt(v^) is within a hundred times eps = 1e-8: there a rounding-level difference in a
/// near-zero (but nonzero) gradient moves the weight by up to lr. Those weights (a handful) are left out of the weight
/// comparison and counted; the Adam moments are compared everywhere.
/// </summary>
[Trait("Category", "Unit")]
public class SparseTopKStepTests
{
    private const int D = 24, Latents = 96, Batch = 64, Steps = 6;

    [Theory]
    [InlineData("topk", false)]
    [InlineData("topk", true)]
    [InlineData("batchtopk", false)]
    [InlineData("batchtopk", true)]
    public async Task The_sparse_step_makes_the_same_updates_as_the_dense_reference(string architecture, bool applyBDecToInput)
    {
        using var worker = new Stitching.Core.Compute.TorchWorker();
        var failures = await worker.RunAsync(() =>
        {
            var (rows, _) = SaeFixtures.Planted(Batch * Steps, D, 32, active: 3, seed: 11);
            var config = new SaeConfig(architecture, D, Latents, K: 4, ApplyBDecToInput: applyBDecToInput);
            var mean = Enumerable.Range(0, D).Select(j => (float)Enumerable.Range(0, Batch * Steps).Average(i => rows[(long)i * D + j])).ToArray();
            using var dense = new SaeTrainer(SaeInitializer.Create(config, mean, 7), new TrainerOptions(Dense: true));
            using var sparse = new SaeTrainer(SaeInitializer.Create(config, mean, 7), new TrainerOptions());
            Assert.False(dense.Sparse);
            Assert.True(sparse.Sparse);
            var problems = new List<string>();
            for (var s = 0; s < Steps; s++)
            {
                using var scope = NewDisposeScope();
                var batch = tensor(rows.AsSpan(s * Batch * D, Batch * D).ToArray(), [Batch, D]);
                var a = dense.TrainStep(batch, 1e-2);
                var b = sparse.TrainStep(batch, 1e-2);
                foreach (var (name, x, y) in new[] { ("mse", a.Mse, b.Mse), ("fvu", a.Fvu, b.Fvu), ("l0", a.L0, b.L0), ("loss", a.Loss, b.Loss), ("dead", a.DeadFraction, b.DeadFraction) })
                    if (Math.Abs(x - y) > 1e-5 * Math.Max(1, Math.Abs(x))) problems.Add($"step {s + 1} {name}: dense {x} sparse {y}");
                Compare(dense, sparse, $"step {s + 1}", problems);
                Sync(dense, sparse);
            }
            return problems;
        });
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    private static void Compare(SaeTrainer dense, SaeTrainer sparse, string when, List<string> problems)
    {
        var ps = sparse.Sae.Named().ToDictionary(p => p.Name, p => p.Value);
        var moments = dense.Optimizer.Moments;
        foreach (var (name, p) in dense.Sae.Named())
        {
            using var scope = NewDisposeScope();
            var conditioned = moments.TryGetValue(name, out var mv)
                ? (mv.V / (1 - Math.Pow(0.999, dense.Step))).sqrt().gt(1e-6).logical_or(mv.V.eq(0)) // v = 0: no gradient yet, no step in either
                : ones_like(p, ScalarType.Bool);
            var skipped = conditioned.logical_not().sum().item<long>();
            var moved = moments.TryGetValue(name, out var mv2) ? mv2.V.ne(0).sum().item<long>() : p.numel();
            // The comparison must not be vacuous: at least 90% of the weights Adam moved are compared.
            if (skipped > moved / 10) problems.Add($"{when}: {name}: {skipped} of the {moved} moved weights have an ill-conditioned Adam step");
            var diff = (p - ps[name]).abs().masked_select(conditioned);
            var max = diff.numel() == 0 ? 0 : diff.max().item<float>();
            var size = p.abs().max().item<float>();
            if (max > 1e-5f * Math.Max(1, size)) problems.Add($"{when}: {name}: max |dense - sparse| = {max} (max |w| {size}; {skipped} ill-conditioned left out)");
        }
        foreach (var (name, (m, v)) in dense.Optimizer.Moments)
        {
            var (m2, v2) = sparse.Optimizer.Moments[name];
            var dm = (m - m2).abs().max().item<float>();
            var dv = (v - v2).abs().max().item<float>();
            if (dm > 1e-5f * Math.Max(1e-3f, m.abs().max().item<float>()) || dv > 1e-5f * Math.Max(1e-6f, v.abs().max().item<float>()))
                problems.Add($"{when}: Adam moments of {name} differ: m {dm}, v {dv}");
        }
        if (!dense.TokensSinceFired.eq(sparse.TokensSinceFired).all().item<bool>()) problems.Add($"{when}: tokens-since-fired counters differ");
    }

    /// <summary>The sparse trainer takes the dense one's weights, threshold and Adam moments (copies).</summary>
    private static void Sync(SaeTrainer dense, SaeTrainer sparse)
    {
        using var _ = no_grad();
        var ps = sparse.Sae.Named().ToDictionary(p => p.Name, p => p.Value);
        foreach (var (name, p) in dense.Sae.Named()) ps[name].copy_(p);
        foreach (var (name, (m, v)) in dense.Optimizer.Moments) sparse.Optimizer.Restore(name, m, v);
    }
}
