using Stitching.Core.Compute;
using static TorchSharp.torch;

namespace Stitching.Stitch.Fitting;

/// <summary>
/// Exact least squares of one stitch direction from its moments (paper section 2, "our addition"):
/// minimise mean ||y - x P - b||^2 + lambda ||P||_F^2, whose solution is (C_xx + lambda I) P = C_xy and
/// b = mean(y) - mean(x) P. Solved by Cholesky; when the factorisation fails or the system's
/// condition number exceeds <see cref="MaxCondition"/>, by a symmetric eigendecomposition that drops
/// directions with eigenvalues below 1e-12 of the largest (the minimum-norm solution).
/// </summary>
public static class LeastSquares
{
    public const double MaxCondition = 1e12;

    public sealed record Solution(Tensor P, Tensor B, string Solver, double Flops);

    public static Solution Solve(Moments m, double ridge)
    {
        var d = m.Cxx.shape[0];
        var k = m.Cxy.shape[1];
        var system = m.Cxx + ridge * eye(d, dtype: ScalarType.Float64, device: m.Cxx.device);
        var (l, info) = linalg.cholesky_ex(system);
        Tensor p;
        string solver;
        double flops;
        var diag = l.diagonal();
        var condition = info.item<int>() == 0 ? Math.Pow(diag.max().item<double>() / diag.min().item<double>(), 2) : double.PositiveInfinity;
        if (condition < MaxCondition && double.IsFinite(condition))
        {
            p = cholesky_solve(m.Cxy, l);
            (solver, flops) = ("cholesky", Flops.CholeskySolve(d, k));
        }
        else
        {
            var (w, v) = linalg.eigh(system);
            var keep = w > w.max() * 1e-12;
            var inverse = where(keep, 1.0 / where(keep, w, ones_like(w)), zeros_like(w));
            p = v.matmul(inverse.unsqueeze(1) * v.t().matmul(m.Cxy));
            (solver, flops) = ("eigh", Flops.EigenSolve(d, k));
        }
        var b = m.MeanY - m.MeanX.matmul(p);
        return new Solution(p, b, solver, flops + Flops.Matmul(1, d, k));
    }
}
