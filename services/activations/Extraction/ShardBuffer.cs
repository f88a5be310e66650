using Stitching.Core.Activations;
using System.Runtime.InteropServices;
using Stitching.Core.Tensors;
using static TorchSharp.torch;

namespace Stitching.Activations.Extraction;

/// <summary>One shard's worth of rows, reused shard after shard: its size bounds extraction memory.</summary>
internal sealed class ShardBuffer(IReadOnlyList<string> hooks, int capacityRows, int context, int width)
{
    private readonly byte[][] _activations = hooks.Select(_ => new byte[(long)capacityRows * context * width * sizeof(float)]).ToArray();
    private readonly int[] _tokenIds = new int[capacityRows * context];
    private readonly byte[] _special = new byte[capacityRows * context];
    private readonly int[] _row = new int[capacityRows * context];
    private readonly int[] _position = new int[capacityRows * context];
    private readonly int[] _filled = new int[hooks.Count];

    public int Rows { get; private set; }
    public bool Full => Rows == capacityRows;

    /// <summary>Copies captured [rows, T, d] activations (any float dtype) as float32 after what is there.</summary>
    public void Append(int hook, Tensor captured)
    {
        using var f = captured.to(ScalarType.Float32).cpu().contiguous();
        var bytes = f.bytes;
        bytes.CopyTo(_activations[hook].AsSpan(_filled[hook]));
        _filled[hook] += bytes.Length;
    }

    /// <summary>Records the token ids, special flags and row/position of rows [firstRow, firstRow + n).</summary>
    public void AddRows(ReadOnlySpan<int> ids, ReadOnlySpan<byte> special, long firstRow)
    {
        var at = Rows * context;
        ids.CopyTo(_tokenIds.AsSpan(at));
        special.CopyTo(_special.AsSpan(at));
        var rows = ids.Length / context;
        for (var r = 0; r < rows; r++)
            for (var p = 0; p < context; p++)
            {
                _row[at + r * context + p] = (int)(firstRow + r);
                _position[at + r * context + p] = p;
            }
        Rows += rows;
    }

    public IReadOnlyList<HostTensor> Tensors()
    {
        var n = Rows * context;
        var list = hooks.Select((h, j) => new HostTensor(h, DType.F32, [n, width], _activations[j].AsMemory(0, n * width * sizeof(float)))).ToList();
        list.Add(new HostTensor(ActivationSetLayout.TokenIdsTensor, DType.I32, [n], MemoryMarshal.AsBytes(_tokenIds.AsSpan(0, n)).ToArray()));
        list.Add(new HostTensor(ActivationSetLayout.SpecialTensor, DType.U8, [n], _special.AsMemory(0, n)));
        list.Add(new HostTensor(ActivationSetLayout.RowTensor, DType.I32, [n], MemoryMarshal.AsBytes(_row.AsSpan(0, n)).ToArray()));
        list.Add(new HostTensor(ActivationSetLayout.PositionTensor, DType.I32, [n], MemoryMarshal.AsBytes(_position.AsSpan(0, n)).ToArray()));
        return list;
    }

    public void Clear()
    {
        Rows = 0;
        Array.Clear(_filled);
    }
}
