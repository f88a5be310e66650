using Stitching.Core.Errors;
using TorchSharp;
using static TorchSharp.torch;

namespace Stitching.Models.Runtime;

/// <summary>Rewrites the value at a hook, x [B, T, d] -> [B, T, d].</summary>
public interface IIntervention
{
    /// <summary>The rewritten value; x covers positions offset..offset+T-1 (offset > 0 in a KV-cached step).</summary>
    Tensor Apply(Tensor x, int offset = 0);
}

/// <summary>
/// Base for interventions that may be limited to some token positions: the rewritten value is used at
/// those positions and the clean value elsewhere.
/// </summary>
public abstract class PositionalIntervention(IReadOnlyList<int>? positions) : IIntervention
{
    public IReadOnlyList<int>? Positions { get; } = positions;

    protected abstract Tensor Rewrite(Tensor x);

    /// <summary>
    /// Positions are absolute: with an offset (a KV-cached step) those before it were applied by earlier steps
    /// and are skipped; without one every position must lie inside x.
    /// </summary>
    public Tensor Apply(Tensor x, int offset = 0)
    {
        if (Positions is null or { Count: 0 }) return Rewrite(x).to(x.dtype);
        var t = x.shape[1];
        if (offset == 0 && Positions.Any(p => p < 0 || p >= t))
            throw StitchingException.InvalidArgument("positions", $"positions must lie in 0..{t - 1}.");
        var local = Positions.Where(p => p >= offset && p < offset + t).Select(p => (long)(p - offset)).ToArray();
        if (local.Length == 0) return x;
        var rewritten = Rewrite(x).to(x.dtype);
        var mask = zeros(t, dtype: ScalarType.Bool, device: x.device);
        mask[tensor(local, device: x.device)] = tensor(true);
        return where(mask.view(1, t, 1), rewritten, x);
    }

    protected static Tensor Expect(Tensor v, Tensor x, string field, params long[] shape)
    {
        if (!v.shape.SequenceEqual(shape))
            throw StitchingException.InvalidArgument(field, $"shape [{string.Join(", ", v.shape)}] must be [{string.Join(", ", shape)}] at this hook.");
        return v.to(x.dtype, x.device);
    }
}

/// <summary>x := value, with value [B, T, d], or [T, d] / [d] broadcast over the batch.</summary>
public sealed class ReplaceIntervention(Tensor value, IReadOnlyList<int>? positions = null) : PositionalIntervention(positions)
{
    protected override Tensor Rewrite(Tensor x)
    {
        var v = value.dim() switch
        {
            1 => Expect(value, x, "replace.value", x.shape[2]),
            2 => Expect(value, x, "replace.value", x.shape[1], x.shape[2]),
            _ => Expect(value, x, "replace.value", x.shape),
        };
        return v.expand_as(x);
    }
}

/// <summary>x := x + scale * vector, vector [d] (a steering vector).</summary>
public sealed class AddIntervention(Tensor vector, double scale = 1, IReadOnlyList<int>? positions = null) : PositionalIntervention(positions)
{
    protected override Tensor Rewrite(Tensor x) => x + scale * Expect(vector, x, "add.vector", x.shape[2]);
}

/// <summary>
/// Clamps the projection onto a direction (the paper's steering intervention, section 7):
/// h' = h + (z - &lt;h, v&gt;) v with v = direction / |direction|.
/// </summary>
public sealed class ClampIntervention(Tensor direction, double value, IReadOnlyList<int>? positions = null) : PositionalIntervention(positions)
{
    protected override Tensor Rewrite(Tensor x)
    {
        var d = Expect(direction, x, "clamp.direction", x.shape[2]).to(ScalarType.Float32);
        var norm = d.norm().item<float>();
        if (!(norm > 0)) throw StitchingException.InvalidArgument("clamp.direction", "must be a non-zero vector.");
        var v = d / norm;
        var h = x.to(ScalarType.Float32);
        var proj = matmul(h, v).unsqueeze(-1);
        return h + (value - proj) * v;
    }
}

/// <summary>x := ((x P_1 + b_1) P_2 + b_2) ...: one affine map (d -> d) or a chain such as a stitch round trip.</summary>
public sealed class AffineIntervention(IReadOnlyList<(Tensor P, Tensor? B)> maps, IReadOnlyList<int>? positions = null) : PositionalIntervention(positions)
{
    protected override Tensor Rewrite(Tensor x)
    {
        var h = x.to(ScalarType.Float32);
        foreach (var (p, b) in maps)
        {
            if (p.dim() != 2 || p.shape[0] != h.shape[^1])
                throw StitchingException.InvalidArgument("affine.matrix", $"shape [{string.Join(", ", p.shape)}] must be [{h.shape[^1]}, d_out].");
            if (b is not null && (b.dim() != 1 || b.shape[0] != p.shape[1]))
                throw StitchingException.InvalidArgument("affine.bias", $"shape [{string.Join(", ", b.shape)}] must be [{p.shape[1]}], the matrix's output width.");
            h = matmul(h, p.to(ScalarType.Float32, x.device));
            if (b is not null) h = h + b.to(ScalarType.Float32, x.device);
        }
        if (h.shape[^1] != x.shape[^1])
            throw StitchingException.InvalidArgument("affine.matrix", $"the maps end in width {h.shape[^1]} but this hook has width {x.shape[^1]}; chain maps that return to the hook's width.");
        return h;
    }
}

/// <summary>x := f(x) for a function given by another component (an SAE reconstruction, say).</summary>
public sealed class FunctionIntervention(Func<Tensor, Tensor> function, IReadOnlyList<int>? positions = null) : PositionalIntervention(positions)
{
    protected override Tensor Rewrite(Tensor x) => function(x);
}

/// <summary>Zero ablation (mean = null) or mean ablation (x := mean vector [d]).</summary>
public sealed class AblateIntervention(Tensor? mean = null, IReadOnlyList<int>? positions = null) : PositionalIntervention(positions)
{
    protected override Tensor Rewrite(Tensor x) => mean is null ? zeros_like(x) : Expect(mean, x, "ablate.mean", x.shape[2]).expand_as(x);
}
