using Stitching.Core.Metrics;
using Stitching.Sae.Weights;
using Stitching.Sae.Training;
using static TorchSharp.torch;

namespace Stitching.Sae.Evaluation;

/// <summary>
/// A fixed batch of held-out activations [n, d_in] (raw, unscaled) on which an SAE is measured during
/// training: FVU and MSE of the reconstruction (docs/metrics.md, the one definition in
/// <see cref="ReconstructionMetrics"/>) and L0 of the latents, encoded in chunks to bound memory.
/// Call on the torch thread.
/// </summary>
public sealed class HeldOutBatch(Tensor rows) : IDisposable
{
    private const int Chunk = 4096;
    private readonly Tensor _rows = rows.DetachFromDisposeScope();

    public long Rows => _rows.shape[0];

    /// <summary>The SAE's held-out row at the given position of its run.</summary>
    public EvalRow Evaluate(SaeParameters sae, long step, long tokens, double flops)
    {
        using var noGc = Core.Compute.NoGcRegion.Enter();
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var reconstructions = new List<Tensor>();
        double active = 0;
        foreach (var chunk in _rows.split(Chunk))
        {
            var f = sae.Encode(chunk);
            active += SparsityMetrics.L0(f) * chunk.shape[0];
            reconstructions.Add(sae.Decode(f));
        }
        var xHat = cat(reconstructions, 0);
        return new EvalRow(step, tokens, flops, ReconstructionMetrics.Mse(_rows, xHat), ReconstructionMetrics.Fvu(_rows, xHat), active / Rows);
    }

    public void Dispose() => _rows.Dispose();
}
