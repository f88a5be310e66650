using Stitching.Core.Tensors;

namespace Stitching.Core.Forward;

/// <summary>Which language model runs (a model-store name, folder or hub id, dtype and device as the activations service reads them).</summary>
public sealed record LanguageModelRef(string Model, string DType = "", string Device = "");

/// <summary>A change to one hook's stream during a forward pass.</summary>
public abstract record StreamEdit(string Hook);

/// <summary>Rewrites the stream with the stitch's round trip: A -> B -> A (P_up then P_down) when <see cref="Up"/>, else B -> A -> B.</summary>
public sealed record RoundTripEdit(string Hook, bool Up) : StreamEdit(Hook);

/// <summary>Zero ablation, or mean ablation when <see cref="Mean"/> ([d]) is given.</summary>
public sealed record AblateEdit(string Hook, HostTensor? Mean) : StreamEdit(Hook);

/// <summary>Replaces the stream with <see cref="Value"/> ([rows, T, d]), e.g. an SAE's reconstruction.</summary>
public sealed record ReplaceEdit(string Hook, HostTensor Value) : StreamEdit(Hook);

/// <summary>Steering by clamping: h' = h + (Value - &lt;h, v&gt;) v with v = Direction / |Direction| ([d]), at every position.</summary>
public sealed record ClampEdit(string Hook, HostTensor Direction, double Value) : StreamEdit(Hook);

/// <summary>Greedy or sampled continuation of prompt ids, with an optional stream edit on every step.</summary>
public sealed record GenerationCall(LanguageModelRef Model, int[] Prompt, int MaxNewTokens, StreamEdit? Edit = null, double Temperature = 0, ulong Seed = 0);

/// <summary>The new token ids and their text.</summary>
public sealed record Generated(int[] NewIds, string Text);

/// <summary>
/// One forward pass over token rows [rows, T]: optionally capturing a hook's stream, starting at block
/// <c>Start.Layer</c> from a given residual [rows, T, d], or with one stream edit.
/// </summary>
public sealed record ForwardCall(LanguageModelRef Model, int[][] Rows, string? Capture = null, (int Layer, HostTensor Residual)? Start = null,
    StreamEdit? Edit = null, bool Kl = false, bool Logits = false);

/// <summary>
/// Mean next-token CE over the call's predicted tokens, the captured stream (when asked) and, with
/// <see cref="ForwardCall.Kl"/>, the mean over tokens of KL(clean || edited) next-token distributions; with
/// <see cref="ForwardCall.Logits"/> the logits [rows, T, V].
/// </summary>
public sealed record ForwardOutcome(double MeanLoss, HostTensor? Captured, double MeanKl = double.NaN, HostTensor? Logits = null);

/// <summary>
/// Forward passes of language models, as the stitch and eval services need them. In a host it is the
/// activations service over gRPC (Stitching.Hosting.Clients.ActivationsConnection), the only holder of
/// language models; tests may put arithmetic stand-ins behind it.
/// </summary>
public interface ILanguageModels
{
    Task<ForwardOutcome> ForwardAsync(ForwardCall call, CancellationToken ct);

    /// <summary>Texts tokenized by the model's tokenizer without BOS: ids and character offsets [start, end) per token.</summary>
    Task<IReadOnlyList<TextTokens>> TokenizeAsync(LanguageModelRef model, IReadOnlyList<string> texts, CancellationToken ct) =>
        throw new NotSupportedException("these language models do not tokenize text");

    /// <summary>W_U [d, V] float32 (ActivationsService.ReadWeights "unembed.W_U").</summary>
    Task<HostTensor> UnembeddingAsync(LanguageModelRef model, CancellationToken ct) =>
        throw new NotSupportedException("this language-model host does not read weights");

    Task<Generated> GenerateAsync(GenerationCall call, CancellationToken ct) =>
        throw new NotSupportedException("these language models do not generate");
}

/// <summary>One text's tokens and each token's character offsets into it.</summary>
public sealed record TextTokens(int[] Ids, IReadOnlyList<(int Start, int End)> Offsets);
