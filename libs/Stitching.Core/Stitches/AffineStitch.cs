using Stitching.Core.Errors;
using static TorchSharp.torch;

namespace Stitching.Core.Stitches;

/// <summary>
/// A stitch (paper section 2, row-vector convention): T_up(h_A) = h_A P_up + b_up and
/// T_down(h_B) = h_B P_down + b_down, with P_up [d_A, d_B], b_up [d_B], P_down [d_B, d_A], b_down [d_A].
/// Tensors are float32 or float64 on any device; the caller owns their lifetime (torch thread only).
/// Build one from untrusted tensors with <see cref="Validated"/>; its file form is <see cref="StitchFile"/>.
/// </summary>
public sealed record AffineStitch(Tensor PUp, Tensor BUp, Tensor PDown, Tensor BDown)
{
    public long WidthA => PUp.shape[0];
    public long WidthB => PUp.shape[1];

    public Tensor Up(Tensor a) => a.matmul(PUp.to(a.dtype)) + BUp.to(a.dtype);
    public Tensor Down(Tensor b) => b.matmul(PDown.to(b.dtype)) + BDown.to(b.dtype);

    /// <summary>Applies the stitch in one of four directions to [..., d] activations.</summary>
    public Tensor Apply(Tensor x, StitchDirection direction) => direction switch
    {
        StitchDirection.Up => Up(x),
        StitchDirection.Down => Down(x),
        StitchDirection.UpDown => Down(Up(x)),
        StitchDirection.DownUp => Up(Down(x)),
        _ => throw StitchingException.InvalidArgument("direction", "choose UP, DOWN, UP_DOWN or DOWN_UP."),
    };

    /// <summary>Moves a direction (no bias: a direction is not a position, paper sections 6-7): v P_up or v P_down.</summary>
    public Tensor MoveDirection(Tensor v, StitchDirection direction) => direction switch
    {
        StitchDirection.Up => v.matmul(PUp.to(v.dtype)),
        StitchDirection.Down => v.matmul(PDown.to(v.dtype)),
        _ => throw StitchingException.InvalidArgument("direction", "choose UP (v P_up) or DOWN (v P_down)."),
    };

    /// <summary>Width the input of a direction must have.</summary>
    public long InputWidth(StitchDirection direction) => direction is StitchDirection.Up or StitchDirection.UpDown ? WidthA : WidthB;

    /// <summary>
    /// Checks that the four tensors are matrices and vectors whose shapes agree and hold only finite values;
    /// <paramref name="source"/> names where they came from (the field of the error).
    /// </summary>
    public static AffineStitch Validated(Tensor pUp, Tensor bUp, Tensor pDown, Tensor bDown, string source)
    {
        if (pUp.dim() != 2 || pDown.dim() != 2 || bUp.dim() != 1 || bDown.dim() != 1)
            throw StitchingException.InvalidArgument(source, $"P_up and P_down must be matrices and b_up, b_down vectors; {StitchFile.Holds}");
        var (dA, dB) = (pUp.shape[0], pUp.shape[1]);
        if (pDown.shape[0] != dB || pDown.shape[1] != dA || bUp.shape[0] != dB || bDown.shape[0] != dA)
            throw StitchingException.InvalidArgument(source,
                $"shapes disagree: P_up [{dA}, {dB}] needs b_up [{dB}], P_down [{dB}, {dA}], b_down [{dA}]; got b_up [{bUp.shape[0]}], P_down [{string.Join(", ", pDown.shape)}], b_down [{bDown.shape[0]}].");
        foreach (var (t, name) in new[] { (pUp, "P_up"), (bUp, "b_up"), (pDown, "P_down"), (bDown, "b_down") })
            if (!isfinite(t).all().item<bool>()) throw StitchingException.InvalidArgument(source, $"{name} holds NaN or Inf values.");
        return new AffineStitch(pUp, bUp, pDown, bDown);
    }
}

/// <summary>Which way a stitch is applied (stitch.proto's Direction maps onto it at the gRPC edge).</summary>
public enum StitchDirection { Up, Down, UpDown, DownUp }
