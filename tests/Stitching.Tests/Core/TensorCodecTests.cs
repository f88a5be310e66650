using Stitching.Core.Errors;
using Stitching.Core.Tensors;
using Proto = Stitching.Contracts.Common.V1;

namespace Stitching.Tests.Core;

[Trait("Category", "Unit")]
public class TensorCodecTests
{
    [Fact]
    public void Chunks_respect_the_chunk_size_and_reassemble_exactly()
    {
        var data = new byte[10_000];
        new Random(1).NextBytes(data);
        var t = new HostTensor("t", DType.U8, [100, 100], data);
        var chunks = TensorCodec.ToChunks(t, chunkBytes: 3000).ToList();
        Assert.Equal(1 + 4, chunks.Count);
        Assert.All(chunks.Skip(1), c => Assert.True(c.Data.Length <= 3000));
        var asm = new TensorAssembler();
        HostTensor? back = null;
        foreach (var c in chunks) back = asm.Add(c) ?? back;
        asm.Finish();
        Assert.Equal(data, back!.Data.ToArray());
    }

    [Fact]
    public void Header_with_wrong_byte_length_names_the_field()
    {
        var h = new Proto.TensorHeader { Name = "x", Dtype = Proto.DType.F32, ByteLength = 7, Shape = { 2 } };
        var e = Assert.Throws<StitchingException>(() => new TensorAssembler().Add(new Proto.TensorChunk { Header = h }));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Equal("header.byte_length", e.Field);
    }

    [Fact]
    public void Stream_ending_mid_tensor_is_rejected()
    {
        var asm = new TensorAssembler();
        asm.Add(new Proto.TensorChunk { Header = new Proto.TensorHeader { Name = "x", Dtype = Proto.DType.F32, ByteLength = 8, Shape = { 2 } } });
        asm.Add(new Proto.TensorChunk { Data = Google.Protobuf.ByteString.CopyFrom(new byte[4]) });
        var e = Assert.Throws<StitchingException>(asm.Finish);
        Assert.Contains("4 of 8 bytes", e.Message);
    }

    [Fact]
    public void Single_message_decode_aliases_the_message_buffer()
    {
        var t = HostTensor.FromFloats("x", [1f, 2f], 2);
        var msg = TensorCodec.ToProto(t);
        var back = TensorCodec.FromProto(msg);
        Assert.True(back.Data.Span == msg.Data.Span, "decode should not copy");
        Assert.Equal([1f, 2f], back.ToFloats());
    }
}
