using static TorchSharp.torch;

namespace Stitching.Sae.Training;

/// <summary>
/// Adam (Kingma and Ba 2015) over named tensors, with its moments held as plain tensors so checkpoints
/// can save and restore them exactly: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2,
/// p -= lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps).
/// </summary>
public sealed class Adam(double beta1, double beta2, double eps = 1e-8) : IDisposable
{
    private readonly Dictionary<string, (Tensor M, Tensor V)> _moments = new();

    public IReadOnlyDictionary<string, (Tensor M, Tensor V)> Moments => _moments;

    /// <summary>Applies step t (1-based) to one parameter in place; call under no_grad.</summary>
    public void Update(string name, Tensor parameter, Tensor grad, long t, double lr)
    {
        if (!_moments.TryGetValue(name, out var s))
        {
            s = (zeros_like(parameter).DetachFromDisposeScope(), zeros_like(parameter).DetachFromDisposeScope());
            _moments[name] = s;
        }
        s.M.mul_(beta1).add_(grad, alpha: 1 - beta1);
        s.V.mul_(beta2).addcmul_(grad, grad, value: 1 - beta2);
        var c1 = 1 - Math.Pow(beta1, t);
        var c2 = 1 - Math.Pow(beta2, t);
        using var denom = s.V.div(c2).sqrt_().add_(eps);
        parameter.addcdiv_(s.M, denom, value: -lr / c1);
    }

    /// <summary>Restores one parameter's moments (copies).</summary>
    public void Restore(string name, Tensor m, Tensor v) =>
        _moments[name] = (m.clone().DetachFromDisposeScope(), v.clone().DetachFromDisposeScope());

    public void Dispose()
    {
        foreach (var (m, v) in _moments.Values) { m.Dispose(); v.Dispose(); }
    }
}
