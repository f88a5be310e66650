using Stitching.Core.Stitches;
using Stitching.Core.Compute;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Stitching.Stitch.Fitting;

/// <summary>
/// Trains both maps of a stitch jointly by Adam on the paper's loss (section 2), each term a mean
/// over tokens and dimensions:
///   MSE(T_up(A), B) + MSE(T_down(B), A) + alpha [MSE(T_down(T_up(A)), A) + MSE(T_up(T_down(B)), B)].
/// Training rows are held in memory (float32); torch thread only.
/// </summary>
public static class AdamStitchTrainer
{
    public sealed record Outcome(AffineStitch Stitch, double Flops, double FinalLoss, long Steps);

    public static Outcome Train(Tensor a, Tensor b, AdamOptions o, AffineStitch? init, Action<long, long, double>? progress = null, CancellationToken ct = default)
    {
        var n = a.shape[0];
        var (dA, dB) = (a.shape[1], b.shape[1]);
        var generator = new Generator(o.Seed);
        var pUp = NewParameter(init?.PUp, dA, dB);
        var bUp = NewParameter(init?.BUp, dB, 0);
        var pDown = NewParameter(init?.PDown, dB, dA);
        var bDown = NewParameter(init?.BDown, dA, 0);
        var parameters = new[] { pUp, bUp, pDown, bDown };
        var optimizer = optim.Adam(parameters, lr: o.LearningRate);
        var stepsPerEpoch = (n + o.BatchSize - 1) / o.BatchSize;
        var total = o.Steps > 0 ? o.Steps : stepsPerEpoch * o.Epochs;
        double flops = 0, last = double.NaN;
        long step = 0;
        while (step < total)
        {
            var order = randperm(n, generator: generator);
            for (long start = 0; start < n && step < total; start += o.BatchSize, step++)
            {
                ct.ThrowIfCancellationRequested();
                NativeMemory.Relieve(); // TorchSharp's optimizer step leaves native memory to finalizers
                using var scope = NewDisposeScope();
                var index = order.slice(0, start, Math.Min(n, start + o.BatchSize), 1);
                var (x, y) = (a.index_select(0, index), b.index_select(0, index));
                // cosine decay from the base rate to zero over all steps
                var lr = o.LearningRate * 0.5 * (1 + Math.Cos(Math.PI * step / total));
                foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
                optimizer.zero_grad();
                var up = x.matmul(pUp) + bUp;
                var down = y.matmul(pDown) + bDown;
                var loss = nn.functional.mse_loss(up, y) + nn.functional.mse_loss(down, x);
                if (o.Alpha > 0)
                    loss = loss + o.Alpha * (nn.functional.mse_loss(up.matmul(pDown) + bDown, x) + nn.functional.mse_loss(down.matmul(pUp) + bUp, y));
                loss.backward();
                nn.utils.clip_grad_norm_(parameters, o.ClipNorm);
                optimizer.step();
                last = loss.item<float>();
                flops += Flops.AdamStitchStep(x.shape[0], dA, dB, o.Alpha > 0);
                if (step % 50 == 0) progress?.Invoke(step, total, last);
            }
        }
        using var noGrad = no_grad();
        var stitch = new AffineStitch(pUp.detach().clone(), bUp.detach().clone(), pDown.detach().clone(), bDown.detach().clone());
        return new Outcome(stitch, flops, last, total);
    }

    private static Parameter NewParameter(Tensor? init, long rows, long cols)
    {
        if (init is not null) return new Parameter(init.to(ScalarType.Float32).clone());
        return new Parameter(cols == 0 ? zeros(rows) : zeros(rows, cols));
    }
}
