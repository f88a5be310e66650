using TorchSharp;
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
        // Scalars are created explicitly and disposed after use: an implicit double -> Scalar temporary
        // can be finalized by the GC while the native call still reads it (seen as "Unknown scalar type").
        // Six passes over the parameter's size instead of eight (these tensors are M x d, memory-bound): m by lerp,
        // and sqrt(v / c2) + eps = (sqrt(v) + eps sqrt(c2)) / sqrt(c2), the sqrt(c2) folded into the step size.
        var c1 = 1 - Math.Pow(beta1, t);
        var c2 = Math.Sqrt(1 - Math.Pow(beta2, t));
        using Scalar b2 = beta2.ToScalar(), a2 = (1 - beta2).ToScalar(), epsilon = (eps * c2).ToScalar(), step = (-lr * c2 / c1).ToScalar();
        using var a1 = tensor((float)(1 - beta1), parameter.dtype, parameter.device); // TorchSharp's lerp_ takes a tensor weight
        s.M.lerp_(grad, a1);
        s.V.mul_(b2).addcmul_(grad, grad, value: a2);
        using var denom = s.V.sqrt().add_(epsilon);
        parameter.addcdiv_(s.M, denom, value: step);
    }

    /// <summary>Restores one parameter's moments (copies).</summary>
    public void Restore(string name, Tensor m, Tensor v) =>
        _moments[name] = (m.clone().DetachFromDisposeScope(), v.clone().DetachFromDisposeScope());

    public void Dispose()
    {
        foreach (var (m, v) in _moments.Values) { m.Dispose(); v.Dispose(); }
    }
}
