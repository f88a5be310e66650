using TorchSharp;
using Stitching.Core.Compute;
using Stitching.Core.Metrics;
using Stitching.Sae.Architectures;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Training;

/// <summary>Optimiser and dead-latent settings of a training run (defaults are the paper's recipe).</summary>
/// <param name="Dense">Always take the dense autograd step (the reference); by default TopK and BatchTopK without
/// AuxK take the sparse step (<see cref="SparseTopKStep"/>), the same update computed through the kept latents only.</param>
public sealed record TrainerOptions(double Beta1 = 0.9, double Beta2 = 0.999, double AuxKCoefficient = 0, int AuxK = 0, long DeadWindowTokens = 1_000_000,
    bool Dense = false);

/// <summary>
/// One SAE's training state and step (paper section 4): loss = mean_t ||x_t - x_hat_t||^2 + sparsity
/// penalty (+ AuxK), Adam, decoder-row gradients projected onto the rows' tangent space before the update
/// and rows renormalised to unit norm after it, per-latent tokens-since-fired for dead-latent tracking.
/// Everything that determines later steps (weights, Adam moments, counters) is exportable for checkpoints.
/// Runs on the calling thread: callers keep it on one torch thread.
/// </summary>
public sealed class SaeTrainer : IDisposable
{
    private readonly TrainerOptions _options;
    private readonly Adam _adam;

    public SaeTrainer(SaeParameters sae, TrainerOptions options, double flopsOffset = 0)
    {
        Sae = sae;
        _options = options;
        _adam = new Adam(options.Beta1, options.Beta2);
        foreach (var (_, p) in Trainable) p.requires_grad_(true);
        TokensSinceFired = zeros(sae.Config.DSae, ScalarType.Int64).DetachFromDisposeScope();
        Flops = flopsOffset;
    }

    public SaeParameters Sae { get; }
    public long Step { get; private set; }
    public long Tokens { get; private set; }
    /// <summary>Ledger FLOPs: the offset (e.g. stitch fitting) plus every step's analytic count.</summary>
    public double Flops { get; private set; }
    /// <summary>[d_sae] int64: tokens seen since each latent last fired.</summary>
    public Tensor TokensSinceFired { get; private set; }
    public Adam Optimizer => _adam;

    /// <summary>Parameters Adam updates: all weights; the BatchTopK threshold is a statistic, not trained.</summary>
    public IEnumerable<(string Name, Tensor Value)> Trainable =>
        Sae.Named().Where(p => p.Name != SaeParameters.ThresholdName || Sae.Config.Architecture == "jumprelu");

    /// <summary>Whether steps go through <see cref="SparseTopKStep"/> (TopK or BatchTopK, no AuxK, not forced dense).</summary>
    public bool Sparse => !_options.Dense && !(_options.AuxKCoefficient > 0 && _options.AuxK > 0) && Sae.Architecture is ISparseSelection;

    public StepMetrics TrainStep(Tensor x, double lr)
    {
        using var noGc = Core.Compute.NoGcRegion.Enter();
        using var scope = NewDisposeScope();
        var n = x.shape[0];
        var (d, m) = (Sae.Config.DIn, Sae.Config.DSae);
        // Training works in the scaled space (s x); FVU and L0 do not depend on s, MSE is in scaled units.
        x = Sae.Scale(x);
        var auxOn = _options.AuxKCoefficient > 0 && _options.AuxK > 0;
        Tensor xHat, loss, fired;
        double l0;
        if (Sparse)
        {
            using var _ = no_grad();
            var step = SparseTopKStep.Gradients(Sae, (ISparseSelection)Sae.Architecture, x);
            (xHat, loss, fired, l0) = (step.XHat, step.Mse, step.Fired, step.L0);
            Step++;
            Update(Trainable.Select(p => (p.Name, p.Value, step.Gradients[p.Name])), lr);
        }
        else
        {
            var pre = Sae.PreActivation(x);
            var (latents, penalty) = Sae.Architecture.Train(pre, Sae);
            xHat = Sae.DecodeScaled(latents);
            var mse = (xHat - x).square().sum(-1).mean();
            loss = penalty is null ? mse : mse + penalty;
            if (auxOn) loss = loss + AuxKLoss(x, xHat, pre) * _options.AuxKCoefficient;
            loss.backward();
            Step++;
            using var _ = no_grad();
            Update(Trainable.Select(p => (p.Name, p.Value, p.Value.grad!)), lr);
            foreach (var (_, p) in Trainable) p.grad!.zero_();
            fired = SparsityMetrics.Fired(latents.detach());
            l0 = SparsityMetrics.L0(latents.detach());
        }
        using (no_grad())
        {
            using Scalar count = n, one = 1;
            var since = where(fired, zeros_like(TokensSinceFired), TokensSinceFired.add(count, one));
            TokensSinceFired.copy_(since);
        }
        Tokens += n;
        Flops += Core.Compute.Flops.SaeTrainingStep(n, d, m, auxOn);
        var window = Math.Min(_options.DeadWindowTokens, Tokens);
        return new StepMetrics(Step, Tokens, Flops, loss.item<float>(),
            ReconstructionMetrics.Mse(x, xHat.detach()), ReconstructionMetrics.Fvu(x, xHat.detach()),
            l0, SparsityMetrics.DeadFraction(TokensSinceFired, window));
    }

    /// <summary>Adam on each parameter after projecting decoder-row gradients onto the rows' tangent space; rows renormalised after. Under no_grad.</summary>
    private void Update(IEnumerable<(string Name, Tensor Parameter, Tensor Gradient)> parameters, double lr)
    {
        foreach (var (name, p, g) in parameters)
        {
            // Unit-norm rows: drop the gradient's component along each row before the update.
            if (name == SaeParameters.WDecName) g.sub_((g * p).sum(1, keepdim: true) * p);
            _adam.Update(name, p, g, Step, lr);
        }
        using Scalar tiny = 1e-12.ToScalar(), zero = 0.0.ToScalar();
        Sae.WDec.div_(Sae.WDec.norm(1, keepdim: true).clamp_min(tiny));
        if (Sae.Config.Architecture == "jumprelu") Sae.Threshold!.clamp_min_(zero);
    }

    /// <summary>
    /// AuxK (Gao et al. 2024): reconstruct the residual e = x - x_hat from the top aux_k pre-activations
    /// of dead latents only; loss = sum ||e - e_hat||^2 / sum ||e - mean(e)||^2 (gradient through e_hat).
    /// </summary>
    private Tensor AuxKLoss(Tensor x, Tensor xHat, Tensor pre)
    {
        var dead = TokensSinceFired.ge(Math.Min(_options.DeadWindowTokens, Math.Max(1, Tokens)));
        var deadCount = (int)dead.sum().item<long>();
        if (deadCount == 0) return zeros(1).sum();
        var masked = where(dead, pre, full_like(pre, float.NegativeInfinity));
        var (values, indices) = masked.topk(Math.Min(_options.AuxK, deadCount), dim: -1);
        var aux = zeros_like(pre).scatter(-1, indices, nn.functional.relu(values));
        var e = (x - xHat).detach();
        var eHat = aux.matmul(Sae.WDec);
        return (e - eHat).square().sum() / (e - e.mean([0], keepdim: true)).square().sum().clamp_min(1e-12);
    }

    /// <summary>Restores counters and optimiser state saved by a checkpoint.</summary>
    public void Restore(long step, long tokens, double flops, Tensor tokensSinceFired, IReadOnlyDictionary<string, (Tensor M, Tensor V)> moments)
    {
        (Step, Tokens, Flops) = (step, tokens, flops);
        using (no_grad()) TokensSinceFired.copy_(tokensSinceFired);
        foreach (var (name, (mo, v)) in moments) _adam.Restore(name, mo, v);
    }

    public void Dispose()
    {
        _adam.Dispose();
        TokensSinceFired.Dispose();
    }
}
