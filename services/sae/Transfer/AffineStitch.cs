using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using static TorchSharp.torch;

namespace Stitching.Sae.Transfer;

/// <summary>
/// The two maps of a stitch (paper section 2, row-vector convention): T_up(h_A) = h_A P_up + b_up and
/// T_down(h_B) = h_B P_down + b_down, read from a stitch.safetensors file (artifact kind "stitch").
/// </summary>
public sealed record AffineStitch(Tensor PUp, Tensor BUp, Tensor PDown, Tensor BDown)
{
    public const string Kind = "stitch";
    public const string File = "stitch.safetensors";

    public long WidthA => PUp.shape[0];
    public long WidthB => PUp.shape[1];

    public Tensor Up(Tensor hA) => hA.matmul(PUp) + BUp;
    public Tensor Down(Tensor hB) => hB.matmul(PDown) + BDown;

    /// <summary>Reads P_up, b_up, P_down, b_down and checks their shapes agree.</summary>
    public static AffineStitch Read(SafetensorsReader reader, string field)
    {
        Tensor Get(string name)
        {
            if (!reader.Contains(name))
                throw StitchingException.InvalidArgument(field, $"{reader.Source} has no tensor '{name}'; a stitch file holds P_up [d_A, d_B], b_up [d_B], P_down [d_B, d_A], b_down [d_A].");
            return TorchTensors.ToTorchFloat(reader.Read(name), field);
        }
        var s = new AffineStitch(Get("P_up"), Get("b_up"), Get("P_down"), Get("b_down"));
        var (a, b) = (s.WidthA, s.WidthB);
        if (s.BUp.shape.SequenceEqual([b]) && s.PDown.shape.SequenceEqual([b, a]) && s.BDown.shape.SequenceEqual([a])) return s;
        throw StitchingException.InvalidArgument(field,
            $"{reader.Source} has inconsistent shapes: P_up [{string.Join(", ", s.PUp.shape)}], b_up [{string.Join(", ", s.BUp.shape)}], P_down [{string.Join(", ", s.PDown.shape)}], b_down [{string.Join(", ", s.BDown.shape)}]; expected [d_A, d_B], [d_B], [d_B, d_A], [d_A].");
    }
}
