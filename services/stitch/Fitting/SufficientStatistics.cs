using static TorchSharp.torch;

namespace Stitching.Stitch.Fitting;

/// <summary>
/// Float64 sufficient statistics of paired rows (x from A, y from B), accumulated chunk by chunk in one
/// streamed pass: n, column sums and the Gram blocks X^T X, Y^T Y, X^T Y. Rows are shifted by the first
/// chunk's means before accumulating, which keeps the later centring free of catastrophic cancellation
/// when activations have a large mean (resid streams do). Torch thread only; the state tensors are
/// detached from dispose scopes and freed by <see cref="Dispose"/>.
/// </summary>
public sealed class SufficientStatistics : IDisposable
{
    private Tensor? _shiftX, _shiftY, _sumX, _sumY, _xx, _yy, _xy;

    public long Count { get; private set; }

    public void Add(Tensor x, Tensor y)
    {
        if (x.shape[0] == 0) return;
        using var scope = NewDisposeScope();
        var xd = x.to(ScalarType.Float64);
        var yd = y.to(ScalarType.Float64);
        if (_shiftX is null)
        {
            _shiftX = Keep(xd.mean([0]));
            _shiftY = Keep(yd.mean([0]));
            _sumX = Keep(zeros_like(_shiftX));
            _sumY = Keep(zeros_like(_shiftY));
            _xx = Keep(zeros(x.shape[1], x.shape[1], dtype: ScalarType.Float64, device: x.device));
            _yy = Keep(zeros(y.shape[1], y.shape[1], dtype: ScalarType.Float64, device: x.device));
            _xy = Keep(zeros(x.shape[1], y.shape[1], dtype: ScalarType.Float64, device: x.device));
        }
        var xs = xd - _shiftX;
        var ys = yd - _shiftY!;
        _sumX!.add_(xs.sum([0]));
        _sumY!.add_(ys.sum([0]));
        _xx!.add_(xs.t().matmul(xs));
        _yy!.add_(ys.t().matmul(ys));
        _xy!.add_(xs.t().matmul(ys));
        Count += x.shape[0];
    }

    /// <summary>Mean of x, covariance of x and cross-covariance with y (population, divided by n) for A -> B.</summary>
    public Moments Up() => Build(_shiftX!, _sumX!, _xx!, _shiftY!, _sumY!, _xy!);

    /// <summary>The same for B -> A (x and y swap roles).</summary>
    public Moments Down() => Build(_shiftY!, _sumY!, _yy!, _shiftX!, _sumX!, _xy!.t());

    private Moments Build(Tensor shiftX, Tensor sumX, Tensor xx, Tensor shiftY, Tensor sumY, Tensor xy)
    {
        if (Count == 0) throw new InvalidOperationException("no rows were added");
        var mx = sumX / Count;
        var my = sumY / Count;
        var cxx = xx / Count - mx.outer(mx);
        var cxy = xy / Count - mx.outer(my);
        return new Moments(mx + shiftX, my + shiftY, cxx, cxy);
    }

    private static Tensor Keep(Tensor t) => t.DetachFromDisposeScope();

    public void Dispose()
    {
        foreach (var t in new[] { _shiftX, _shiftY, _sumX, _sumY, _xx, _yy, _xy }) t?.Dispose();
    }
}

/// <summary>Means of x and y, covariance C_xx and cross-covariance C_xy of one regression direction.</summary>
public sealed record Moments(Tensor MeanX, Tensor MeanY, Tensor Cxx, Tensor Cxy);
