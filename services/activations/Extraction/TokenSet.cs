using System.Runtime.InteropServices;
using Stitching.Contracts.Activations.V1;
using Stitching.Core.Errors;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Models.Tokenization;
using BosPolicy = Stitching.Models.Tokenization.BosPolicy;

namespace Stitching.Activations.Extraction;

/// <summary>
/// Rows of token ids cut from a corpus (see TokenSetSpec in activations.proto): documents tokenized
/// without special tokens, joined with EOS in corpus order, cut into rows of the context length, each
/// starting with BOS when the policy says so; a last partial row is dropped. Deterministic in corpus,
/// tokenizer and spec. Stored as tokens.safetensors: token_ids [rows, T] I32, doc_ids [rows, T] I32
/// (-1 for BOS/EOS), special [rows, T] U8. Built and read a row range at a time, so neither needs
/// memory in proportion to the corpus.
/// </summary>
public static class TokenSet
{
    public const string File = "tokens.safetensors";

    /// <summary>Tokenizes the documents into <paramref name="output"/> and returns (rows, documents).</summary>
    public static (long Rows, long Documents) Build(IEnumerable<string> documents, HfTokenizer tokenizer, TokenSetSpec spec, TokenSetWriter output, CancellationToken ct)
    {
        var context = output.Context;
        var bos = Runtime.BosPolicies.From(spec.BosPolicy, "tokens.bos_policy") switch
        {
            BosPolicy.Always => tokenizer.BosId ?? throw StitchingException.FailedPrecondition("tokens.bos_policy: ALWAYS but the tokenizer has no BOS token; use NEVER.", "tokens.bos_policy"),
            BosPolicy.Never => (int?)null,
            _ => tokenizer.EncodeWithPolicy("a", BosPolicy.Model).Ids is [var first, ..] && first == tokenizer.BosId ? tokenizer.BosId : null,
        };
        var eos = tokenizer.EosId;
        var perRow = bos is null ? context : context - 1;
        var maxRows = spec.MaxTokens > 0 ? spec.MaxTokens / context : long.MaxValue;
        var pending = new Queue<(int Id, int Doc)>();
        var ids = new int[context];
        var docs = new int[context];
        var special = new byte[context];
        var docIndex = 0;
        foreach (var text in documents)
        {
            if (output.Rows >= maxRows) break;
            ct.ThrowIfCancellationRequested();
            foreach (var id in tokenizer.Encode(text, addSpecialTokens: false).Ids) pending.Enqueue((id, docIndex));
            if (eos is { } e) pending.Enqueue((e, -1));
            docIndex++;
            while (pending.Count >= perRow && output.Rows < maxRows)
            {
                var at = 0;
                if (bos is { } b) { ids[0] = b; docs[0] = -1; special[0] = 1; at = 1; }
                for (; at < context; at++)
                {
                    var (id, doc) = pending.Dequeue();
                    (ids[at], docs[at], special[at]) = (id, doc, doc < 0 ? (byte)1 : (byte)0);
                }
                output.AddRow(ids, docs, special);
            }
        }
        if (output.Rows == 0)
            throw StitchingException.InvalidArgument("corpus", $"the corpus gives fewer than one row of {context} tokens; add text or lower tokens.context_length.");
        return (output.Rows, docIndex);
    }
}

/// <summary>Streams rows into three temporary column files, then assembles tokens.safetensors.</summary>
public sealed class TokenSetWriter : IDisposable
{
    private readonly string _directory;
    private readonly FileStream[] _columns;

    public TokenSetWriter(string directory, int context)
    {
        if (context < 2) throw StitchingException.InvalidArgument("tokens.context_length", "must be at least 2.");
        _directory = directory;
        Context = context;
        _columns = new[] { "ids", "docs", "special" }.Select(n => new FileStream(Path.Combine(directory, $".{n}.tmp"), FileMode.Create, FileAccess.ReadWrite, FileShare.None, 1 << 16)).ToArray();
    }

    public int Context { get; }
    public long Rows { get; private set; }

    public void AddRow(ReadOnlySpan<int> ids, ReadOnlySpan<int> docs, ReadOnlySpan<byte> special)
    {
        _columns[0].Write(MemoryMarshal.AsBytes(ids));
        _columns[1].Write(MemoryMarshal.AsBytes(docs));
        _columns[2].Write(special);
        Rows++;
    }

    /// <summary>Writes tokens.safetensors (header, then the three columns) and removes the temporary files.</summary>
    public void Finish(string path, IReadOnlyDictionary<string, string> metadata)
    {
        long[] shape = [Rows, Context];
        var header = SafetensorsHeader.Encode([("token_ids", DType.I32, shape), ("doc_ids", DType.I32, shape), ("special", DType.U8, shape)], metadata);
        using (var output = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
        {
            output.Write(header);
            foreach (var column in _columns)
            {
                column.Position = 0;
                column.CopyTo(output);
            }
            output.Flush(flushToDisk: true);
        }
        Dispose();
    }

    public void Dispose()
    {
        foreach (var c in _columns)
        {
            var name = c.Name;
            c.Dispose();
            System.IO.File.Delete(name);
        }
    }
}

/// <summary>Reads row ranges of a stored tokens.safetensors.</summary>
public sealed class TokenSetRows(SafetensorsReader reader) : IDisposable
{
    private readonly SafetensorsEntry _ids = reader.Entry("token_ids");
    private readonly SafetensorsEntry _special = reader.Entry("special");

    public int Context => (int)_ids.Shape[1];
    public long Rows => _ids.Shape[0];
    public long Tokens => Rows * Context;

    /// <summary>Token ids and special flags of rows [first, first + count).</summary>
    public (int[] Ids, byte[] Special) Read(long first, int count)
    {
        var ids = new int[count * Context];
        var special = new byte[count * Context];
        reader.ReadRange(_ids.Begin + first * Context * sizeof(int), MemoryMarshal.AsBytes(ids.AsSpan()));
        reader.ReadRange(_special.Begin + first * Context, special);
        return (ids, special);
    }

    public void Dispose() => reader.Dispose();
}
