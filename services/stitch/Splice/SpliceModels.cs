using Stitching.Core.Tensors;

namespace Stitching.Stitch.Splice;

/// <summary>Which language model runs (a model-store name, folder or hub id, dtype and device as the activations service reads them).</summary>
public sealed record LanguageModelRef(string Model, string DType = "", string Device = "");

/// <summary>A change to one hook's stream during a forward pass.</summary>
public abstract record StreamEdit(string Hook);

/// <summary>Rewrites the stream with the stitch's round trip: A -> B -> A (P_up then P_down) when <see cref="Up"/>, else B -> A -> B.</summary>
public sealed record RoundTripEdit(string Hook, bool Up) : StreamEdit(Hook);

/// <summary>Zero ablation, or mean ablation when <see cref="Mean"/> ([d]) is given.</summary>
public sealed record AblateEdit(string Hook, HostTensor? Mean) : StreamEdit(Hook);

/// <summary>
/// One forward pass over token rows [rows, T]: optionally capturing a hook's stream, starting at block
/// <c>Start.Layer</c> from a given residual [rows, T, d], or with one stream edit.
/// </summary>
public sealed record ForwardCall(LanguageModelRef Model, int[][] Rows, string? Capture = null, (int Layer, HostTensor Residual)? Start = null, StreamEdit? Edit = null);

/// <summary>Mean next-token CE over the call's predicted tokens and the captured stream (when asked).</summary>
public sealed record ForwardOutcome(double MeanLoss, HostTensor? Captured);

/// <summary>
/// What spliced evaluation needs from language models. In the host it is the activations service over
/// gRPC (<see cref="Clients.ActivationsConnection"/>), the only holder of language models.
/// </summary>
public interface ISpliceModels
{
    Task<ForwardOutcome> ForwardAsync(ForwardCall call, CancellationToken ct);
}
