using Stitching.Core.Errors;

namespace Stitching.Stitch.Data;

/// <summary>One aligned chunk of a pair: rows of A and B for the same tokens, special tokens dropped, split.</summary>
public sealed record PairedChunk(RowBlock TrainA, RowBlock TrainB, RowBlock HeldOutA, RowBlock HeldOutB);

/// <summary>
/// Walks two row sources in step (their block sizes may differ), checks that they describe the same
/// tokens (token ids, when both have them) and hold finite values, drops special tokens, and splits
/// rows into train and held-out by a deterministic hash of the TokenSet row (<see cref="RowSplit"/>).
/// Memory holds about one block per side.
/// </summary>
public sealed class PairedRows(IRowSource a, IRowSource b, double heldOutFraction, long maxTokens)
{
    private readonly List<RowBlock> _pendingA = [], _pendingB = [];
    private int _rowsA, _rowsB;
    private long _offset;
    private bool _endA, _endB;

    /// <summary>Checks what can be checked before reading: widths and token counts.</summary>
    public static void CheckShapes(IRowSource a, IRowSource b)
    {
        if (a.Width <= 0) throw StitchingException.InvalidArgument($"{a.Field}", "has width 0; give activations [n, d] with d >= 1.");
        if (b.Width <= 0) throw StitchingException.InvalidArgument($"{b.Field}", "has width 0; give activations [n, d] with d >= 1.");
        if (a.Tokens == 0 || b.Tokens == 0)
            throw StitchingException.InvalidArgument(a.Tokens == 0 ? a.Field : b.Field, "holds no tokens; a stitch needs rows to fit.");
        if (a.Tokens != b.Tokens)
            throw StitchingException.InvalidArgument("b", $"has {b.Tokens} rows but a has {a.Tokens}; the two sides must hold the same tokens row for row (extract both over one TokenSet).");
    }

    public async IAsyncEnumerable<PairedChunk> ReadAsync([System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
    {
        CheckShapes(a, b);
        while (_offset < maxTokens)
        {
            if (_rowsA == 0 && !_endA) await Pull(a, _pendingA, ct);
            if (_rowsB == 0 && !_endB) await Pull(b, _pendingB, ct);
            var n = (int)Math.Min(Math.Min(_rowsA, _rowsB), maxTokens - _offset);
            if (n == 0)
            {
                if (_rowsA != _rowsB)
                    throw StitchingException.InvalidArgument("b", $"{(_rowsA > _rowsB ? "a" : "b")} has more rows than the other side; rows must align token for token.");
                yield break;
            }
            var ca = Take(_pendingA, ref _rowsA, n);
            var cb = Take(_pendingB, ref _rowsB, n);
            yield return Split(ca, cb, _offset);
            _offset += n;
        }
    }

    private async Task<bool> Pull(IRowSource source, List<RowBlock> pending, CancellationToken ct)
    {
        var block = await source.NextAsync(ct);
        if (block is null)
        {
            if (ReferenceEquals(source, a)) _endA = true; else _endB = true;
            return false;
        }
        if (block.Width != source.Width)
            throw StitchingException.InvalidArgument(source.Field, $"a block has width {block.Width} but the source declares {source.Width}.");
        pending.Add(block);
        if (ReferenceEquals(source, a)) _rowsA += block.Rows; else _rowsB += block.Rows;
        return true;
    }

    private static RowBlock Take(List<RowBlock> pending, ref int available, int n)
    {
        var parts = new List<RowBlock>();
        var need = n;
        while (need > 0)
        {
            var head = pending[0];
            if (head.Rows <= need)
            {
                parts.Add(head);
                pending.RemoveAt(0);
                need -= head.Rows;
            }
            else
            {
                parts.Add(head.Slice(0, need));
                pending[0] = head.Slice(need, head.Rows - need);
                need = 0;
            }
        }
        available -= n;
        return RowBlock.Concat(parts);
    }

    private PairedChunk Split(RowBlock ca, RowBlock cb, long offset)
    {
        if (ca.TokenIds is not null && cb.TokenIds is not null)
            for (var i = 0; i < ca.Rows; i++)
                if (ca.TokenIds[i] != cb.TokenIds[i])
                    throw StitchingException.InvalidArgument("b", $"token {offset + i} is id {cb.TokenIds[i]} in b but {ca.TokenIds[i]} in a; the sets are not over the same TokenSet rows. Extract both in one paired extraction.");
        CheckFinite(ca, a.Field, offset);
        CheckFinite(cb, b.Field, offset);
        var train = new List<int>();
        var heldOut = new List<int>();
        for (var i = 0; i < ca.Rows; i++)
        {
            if ((ca.Special?[i] ?? 0) != 0 || (cb.Special?[i] ?? 0) != 0) continue; // special tokens (BOS, EOS) are masked out
            var row = ca.RowIds?[i] ?? cb.RowIds?[i] ?? (int)(offset + i);
            (RowSplit.IsHeldOut(row, heldOutFraction) ? heldOut : train).Add(i);
        }
        return new PairedChunk(Pick(ca, train), Pick(cb, train), Pick(ca, heldOut), Pick(cb, heldOut));
    }

    private static RowBlock Pick(RowBlock block, List<int> rows)
    {
        var values = new float[rows.Count * block.Width];
        for (var j = 0; j < rows.Count; j++)
            block.Values.AsSpan(rows[j] * block.Width, block.Width).CopyTo(values.AsSpan(j * block.Width));
        return new RowBlock(values, rows.Count, block.Width, null, null, null);
    }

    private static void CheckFinite(RowBlock block, string field, long offset)
    {
        for (var i = 0; i < block.Values.Length; i++)
            if (!float.IsFinite(block.Values[i]))
                throw StitchingException.InvalidArgument(field, $"token {offset + i / block.Width} holds a NaN or Inf value; clean the activations (or re-extract in float32) before fitting.");
    }
}
