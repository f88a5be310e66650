using System.Runtime.InteropServices;
using Stitching.Contracts.Activations.V1;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Models.Tokenization;

namespace Stitching.Activations.Extraction;

/// <summary>
/// Rows of token ids cut from a corpus (see TokenSetSpec in activations.proto): documents tokenized
/// without special tokens, joined with EOS in corpus order, cut into rows of the context length, each
/// starting with BOS when the policy says so. Deterministic in corpus, tokenizer and spec.
/// Stored as tokens.safetensors: token_ids [rows, T] I32, doc_ids [rows, T] I32 (-1 for BOS/EOS), special [rows, T] U8.
/// </summary>
public sealed class TokenSet
{
    public const string File = "tokens.safetensors";

    public TokenSet(int context, int[] ids, int[] docIds, byte[] special)
    {
        Context = context;
        Ids = ids;
        DocIds = docIds;
        Special = special;
    }

    public int Context { get; }
    public int Rows => Ids.Length / Context;
    public long Tokens => Ids.Length;
    public int[] Ids { get; }
    public int[] DocIds { get; }
    public byte[] Special { get; }

    public static TokenSet Build(IEnumerable<string> documents, HfTokenizer tokenizer, TokenSetSpec spec, CancellationToken ct)
    {
        var context = spec.ContextLength == 0 ? 128 : spec.ContextLength;
        if (context < 2) throw StitchingException.InvalidArgument("tokens.context_length", "must be at least 2.");
        var bos = spec.BosPolicy switch
        {
            Contracts.Activations.V1.BosPolicy.Always => tokenizer.BosId ?? throw StitchingException.FailedPrecondition("tokens.bos_policy: ALWAYS but the tokenizer has no BOS token; use NEVER.", "tokens.bos_policy"),
            Contracts.Activations.V1.BosPolicy.Never => (int?)null,
            _ => tokenizer.EncodeWithPolicy("a", Stitching.Models.Tokenization.BosPolicy.Model).Ids is [var first, ..] && first == tokenizer.BosId ? tokenizer.BosId : null,
        };
        var eos = tokenizer.EosId;
        var perRow = bos is null ? context : context - 1;
        var ids = new List<int>();
        var docs = new List<int>();
        var special = new List<byte>();
        var pending = new Queue<(int Id, int Doc)>();
        var docIndex = 0;
        var maxTokens = spec.MaxTokens > 0 ? spec.MaxTokens : long.MaxValue;
        foreach (var text in documents)
        {
            ct.ThrowIfCancellationRequested();
            foreach (var id in tokenizer.Encode(text, addSpecialTokens: false).Ids) pending.Enqueue((id, docIndex));
            if (eos is { } e) pending.Enqueue((e, -1));
            docIndex++;
            while (pending.Count >= perRow && ids.Count + context <= maxTokens)
            {
                if (bos is { } b) { ids.Add(b); docs.Add(-1); special.Add(1); }
                for (var i = 0; i < perRow; i++)
                {
                    var (id, doc) = pending.Dequeue();
                    ids.Add(id);
                    docs.Add(doc);
                    special.Add(doc < 0 ? (byte)1 : (byte)0);
                }
            }
            if (ids.Count + context > maxTokens) break;
        }
        if (ids.Count == 0)
            throw StitchingException.InvalidArgument("corpus", $"the corpus gives fewer than one row of {context} tokens; add text or lower tokens.context_length.");
        return new TokenSet(context, [.. ids], [.. docs], [.. special]);
    }

    public byte[] ToSafetensors(IReadOnlyDictionary<string, string> metadata) => SafetensorsWriter.ToBytes(
    [
        new HostTensor("token_ids", DType.I32, [Rows, Context], MemoryMarshal.AsBytes(Ids.AsSpan()).ToArray()),
        new HostTensor("doc_ids", DType.I32, [Rows, Context], MemoryMarshal.AsBytes(DocIds.AsSpan()).ToArray()),
        new HostTensor("special", DType.U8, [Rows, Context], Special),
    ], metadata);

    public static TokenSet FromSafetensors(SafetensorsReader r)
    {
        var ids = r.Read("token_ids");
        return new TokenSet((int)ids.Shape[1], MemoryMarshal.Cast<byte, int>(ids.Data.Span).ToArray(),
            MemoryMarshal.Cast<byte, int>(r.Read("doc_ids").Data.Span).ToArray(), r.Read("special").Data.ToArray());
    }
}
