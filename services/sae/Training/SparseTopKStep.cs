using TorchSharp;
using Stitching.Sae.Architectures;
using Stitching.Sae.Weights;
using static TorchSharp.torch;

namespace Stitching.Sae.Training;

/// <summary>
/// The loss gradients of a TopK / BatchTopK step computed through the selected latents only (the approach of
/// EleutherAI's sparsify and OpenAI's sparse_autoencoder kernels), by hand instead of autograd. With the kept
/// entries (t_j, i_j, v_j), a_j = ReLU(v_j), x' the encoder input and g = dL/dx_hat = 2 (x_hat - x) / n:
/// <code>
///   x_hat_t   = b_dec + sum_{j: t_j = t} a_j W_dec[i_j]            (a gather of nnz rows, not f W_dec)
///   dW_dec[i] = sum_{j: i_j = i} a_j g_{t_j}                       (index_add into nnz rows)
///   dv_j      = (g_{t_j} . W_dec[i_j]) [v_j &gt; 0]
///   db_enc[i] = sum_{j: i_j = i} dv_j,  dW_enc[:, i] = sum_{j: i_j = i} dv_j x'_{t_j}
///   db_dec    = sum_t g_t  (- W_enc db_enc when b_dec is subtracted from the input)
/// </code>
/// The encoder's forward x' W_enc (2 n d M) is the only dense product left; the rest costs O(nnz d). The
/// gradients equal the dense autograd step's up to float rounding (SparseTopKStepTests compares weights after
/// several steps, for both architectures).
/// </summary>
public static class SparseTopKStep
{
    public sealed record Result(Tensor XHat, Tensor Mse, Dictionary<string, Tensor> Gradients, Tensor Fired, double L0);

    /// <summary>One step's gradients on scaled inputs <paramref name="x"/> [n, d]; call under no_grad inside a dispose scope.</summary>
    public static Result Gradients(SaeParameters sae, ISparseSelection selection, Tensor x)
    {
        var n = x.shape[0];
        using Scalar one = 1;
        var input = sae.Config.ApplyBDecToInput ? x - sae.BDec : x;
        var pre = input.matmul(sae.WEnc).add_(sae.BEnc);
        var (tok, lat, val) = selection.SelectForTraining(pre, sae);
        pre.Dispose();
        var act = nn.functional.relu(val);
        var rows = sae.WDec.index_select(0, lat);                                     // [nnz, d]
        var xHat = sae.BDec.expand(n, -1).contiguous().index_add_(0, tok, rows * act.unsqueeze(1), one);
        var diff = xHat - x;
        var mse = diff.square().sum(-1).mean();
        using Scalar scale = 2.0 / n;
        var g = diff.mul_(scale);                                                     // dL/dx_hat
        var gTok = g.index_select(0, tok);                                            // [nnz, d]
        var gVal = (gTok * rows).sum(1).mul_(val.gt(0));                              // dL/dv
        var gWDec = zeros_like(sae.WDec).index_add_(0, lat, gTok.mul_(act.unsqueeze(1)), one);
        var gBEnc = zeros_like(sae.BEnc).index_add_(0, lat, gVal, one);
        var gWEncT = zeros(sae.WEnc.shape[1], sae.WEnc.shape[0], dtype: sae.WEnc.dtype, device: sae.WEnc.device)
            .index_add_(0, lat, input.index_select(0, tok).mul_(gVal.unsqueeze(1)), one);
        var gBDec = g.sum(dim: 0); // dim named: a bare 0 binds to sum(ScalarType)
        if (sae.Config.ApplyBDecToInput) gBDec.sub_(sae.WEnc.matmul(gBEnc));
        var active = lat.masked_select(act.ne(0));
        var fired = zeros(sae.Config.DSae, ScalarType.Bool, sae.WEnc.device).index_fill_(0, active, true);
        var l0 = (double)active.shape[0] / Math.Max(1, n);
        var gradients = new Dictionary<string, Tensor>
        {
            [SaeParameters.WEncName] = gWEncT.t().contiguous(),
            [SaeParameters.BEncName] = gBEnc,
            [SaeParameters.WDecName] = gWDec,
            [SaeParameters.BDecName] = gBDec,
        };
        return new Result(xHat, mse, gradients, fired, l0);
    }
}
