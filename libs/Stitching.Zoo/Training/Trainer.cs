using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace Stitching.Zoo.Training;

/// <summary>Progress of one training run: step (1-based) of steps and the batch's loss (nats/token).</summary>
public sealed record TrainProgress(int Step, int Steps, double Loss);

/// <summary>
/// Trains a <see cref="TrainableNeoX"/> on token windows with next-token cross-entropy. Deterministic for
/// a seed and thread count: seeded init, seeded window order, torch.set_num_threads fixed, no dropout.
/// </summary>
public static class Trainer
{
    public static TrainableNeoX Train(NeoXSize size, int vocab, TokenWindows data, TrainingSpec spec,
                                      IProgress<TrainProgress>? progress = null, CancellationToken ct = default)
    {
        torch.set_num_threads(spec.Threads);
        torch.manual_seed(spec.Seed);
        var model = new TrainableNeoX(size, vocab, (ulong)spec.Seed);
        var decay = model.Named.Where(p => p.Value.dim() == 2 && !p.Name.EndsWith("embed_in.weight")).Select(p => p.Value).ToList();
        var rest = model.Named.Select(p => p.Value).Except(decay).ToList();
        using var optimizer = torch.optim.AdamW([
            new TorchSharp.Modules.AdamW.ParamGroup(decay, new TorchSharp.Modules.AdamW.Options { LearningRate = spec.PeakLr, weight_decay = spec.WeightDecay, beta1 = 0.9, beta2 = 0.95 }),
            new TorchSharp.Modules.AdamW.ParamGroup(rest, new TorchSharp.Modules.AdamW.Options { LearningRate = spec.PeakLr, weight_decay = 0, beta1 = 0.9, beta2 = 0.95 }),
        ], lr: spec.PeakLr);
        var steps = spec.Steps(data.Context);
        using var order = data.Order(spec.Seed).GetEnumerator();
        for (var step = 0; step < steps; step++)
        {
            ct.ThrowIfCancellationRequested();
            var lr = spec.LearningRate(step, steps);
            foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
            var windows = new int[spec.Batch];
            for (var b = 0; b < spec.Batch; b++) { order.MoveNext(); windows[b] = order.Current; }
            using var noGc = Stitching.Core.Compute.NoGcRegion.Enter();
            using var scope = NewDisposeScope();
            var (inputs, targets) = data.Batch(windows);
            optimizer.zero_grad();
            var logits = model.Forward(inputs);
            var loss = F.cross_entropy(logits.view(-1, vocab), targets.reshape(-1));
            loss.backward();
            torch.nn.utils.clip_grad_norm_(model.Named.Select(p => p.Value), spec.ClipNorm);
            optimizer.step();
            progress?.Report(new TrainProgress(step + 1, steps, loss.item<float>()));
        }
        return model;
    }

    /// <summary>Mean next-token cross-entropy (nats/token) over every window, in batches, without gradients.</summary>
    public static double HeldOutLoss(Func<Tensor, Tensor> logitsOf, TokenWindows data, int batch = 16)
    {
        using var _ = no_grad();
        double total = 0;
        long count = 0;
        for (var start = 0; start < data.Count; start += batch)
        {
            using var scope = NewDisposeScope();
            var (inputs, targets) = data.Batch(Enumerable.Range(start, Math.Min(batch, data.Count - start)).ToList());
            var logits = logitsOf(inputs);
            total += F.cross_entropy(logits.view(-1, logits.shape[^1]), targets.reshape(-1), reduction: nn.Reduction.Sum).item<float>();
            count += targets.numel();
        }
        return total / Math.Max(1, count);
    }
}
