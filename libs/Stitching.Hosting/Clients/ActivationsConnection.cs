using Grpc.Net.Client;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using System.Runtime.InteropServices;
using Stitching.Contracts.Activations.V1;
using Stitching.Core.Errors;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;
using Stitching.Core.Forward;
using Grpc.Core;
using Common = Stitching.Contracts.Common.V1;

namespace Stitching.Hosting.Clients;

/// <summary>
/// A gRPC client of the activations service. We call it over gRPC rather than sharing its in-process
/// ModelHost: only the activations service holds language models (architecture.md), so the stitch
/// service stays deployable on its own (Stitching:ActivationsAddress in Kubernetes) and the all-in-one
/// host takes the very same path through loopback (the default: this host's own address), at the cost
/// of copying a spliced stream per batch, which is small next to a forward pass.
/// </summary>
public sealed class ActivationsConnection(IServer server, IOptions<StitchingOptions> options, AuthInterceptor auth) : IDisposable
{
    private readonly Lazy<GrpcChannel> _channel = new(() => GrpcChannel.ForAddress(
        string.IsNullOrEmpty(options.Value.ActivationsAddress) ? ServiceChannels.OwnAddress(server, ServiceChannels.Activations) : options.Value.ActivationsAddress,
        ServiceChannels.ChannelOptions(options.Value, auth)));

    public ActivationsService.ActivationsServiceClient Client => new(_channel.Value);

    /// <summary>Forward passes through the activations service; round-trip edits read the tensors of <paramref name="stitch"/>.</summary>
    public ILanguageModels Models(Common.ArtifactRef? stitch = null) => new RemoteModels(Client, stitch);

    /// <summary>Layers and width of a model, from the activations service's DescribeModel.</summary>
    public async Task<(int Layers, int Width)> ShapeAsync(LanguageModelRef model, CancellationToken ct)
    {
        var info = await DescribeAsync(model, ct);
        return (info.Layers, info.Width);
    }

    public async Task<ModelInfo> DescribeAsync(LanguageModelRef model, CancellationToken ct) =>
        await Client.DescribeModelAsync(new DescribeModelRequest { Model = Spec(model) }, cancellationToken: ct);

    private static ModelSpec Spec(LanguageModelRef m) => new() { Model = m.Model, Dtype = m.DType, Device = m.Device };

    /// <summary>Texts tokenized by <paramref name="model"/> (no BOS), joined and cut into full rows of <paramref name="context"/> tokens.</summary>
    public async Task<List<int[]>> TokenRowsAsync(ModelSpec model, IEnumerable<string> texts, int context, int maxRows, CancellationToken ct)
    {
        var tokenized = await Client.TokenizeAsync(new TokenizeRequest { Model = model, Texts = { texts }, BosPolicy = BosPolicy.Never }, cancellationToken: ct);
        return tokenized.Texts.SelectMany(t => t.Ids).Chunk(context).Where(c => c.Length == context).Take(maxRows).ToList();
    }

    private sealed class RemoteModels(ActivationsService.ActivationsServiceClient client, Common.ArtifactRef? stitch) : ILanguageModels
    {
        public async Task<ForwardOutcome> ForwardAsync(ForwardCall call, CancellationToken ct)
        {
            var request = new ForwardRequest
            {
                Model = Spec(call.Model), TokenIds = Ids(call.Rows), ReturnLoss = true, ReturnKl = call.Kl, ReturnLogits = call.Logits,
            };
            if (call.Capture is { } hook) request.Capture.Add(hook);
            if (call.Start is { } start) { request.StartLayer = start.Layer; request.StartResidual = TensorCodec.ToProto(start.Residual); }
            if (call.Edit is { } edit) request.Interventions.Add(Intervention(edit));
            var response = await client.ForwardAsync(request, cancellationToken: ct);
            return new ForwardOutcome(response.MeanLoss, response.Captured.Count > 0 ? TensorCodec.FromProto(response.Captured[0], "captured") : null,
                call.Kl ? response.MeanKl : double.NaN, call.Logits ? TensorCodec.FromProto(response.Logits, "logits") : null);
        }

        public async Task<IReadOnlyList<TextTokens>> TokenizeAsync(LanguageModelRef model, IReadOnlyList<string> texts, CancellationToken ct)
        {
            var result = new List<TextTokens>(texts.Count);
            foreach (var batch in texts.Chunk(32)) // keeps each response well under the message limit
            {
                var response = await client.TokenizeAsync(new TokenizeRequest { Model = Spec(model), Texts = { batch }, BosPolicy = BosPolicy.Never }, cancellationToken: ct);
                result.AddRange(response.Texts.Select(t => new TextTokens(t.Ids.ToArray(), t.Starts.Zip(t.Ends).ToArray())));
            }
            return result;
        }

        public async Task<HostTensor> UnembeddingAsync(LanguageModelRef model, CancellationToken ct)
        {
            using var call = client.ReadWeights(new ReadWeightsRequest { Model = Spec(model), Names = { "unembed.W_U" } }, cancellationToken: ct);
            var assembler = new TensorAssembler();
            await foreach (var chunk in call.ResponseStream.ReadAllAsync(ct))
                if (assembler.Add(chunk) is { } t) return t;
            throw StitchingException.DataCorrupted("the activations service ended ReadWeights without a tensor.");
        }

        public async Task<Generated> GenerateAsync(GenerationCall call, CancellationToken ct)
        {
            var request = new GenerateRequest
            {
                Model = Spec(call.Model), PromptIds = { call.Prompt }, MaxNewTokens = call.MaxNewTokens, Temperature = call.Temperature, Seed = call.Seed,
                BosPolicy = BosPolicy.Never, IgnoreEos = true,
            };
            if (call.Edit is { } edit) request.Interventions.Add(Intervention(edit));
            var response = await client.GenerateAsync(request, cancellationToken: ct);
            return new Generated(response.NewIds.ToArray(), response.Text);
        }

        private Intervention Intervention(StreamEdit edit) => edit switch
        {
            ClampEdit c => new Intervention { Hook = c.Hook, Clamp = new Clamp { Direction = TensorCodec.ToProto(c.Direction), Value = c.Value } },
            RoundTripEdit r when stitch is not null => new Intervention
            {
                Hook = r.Hook,
                ArtifactAffine = new ArtifactAffineChain
                {
                    Artifact = stitch, File = StitchFile.FileName,
                    Matrices = { r.Up ? StitchFile.PUp : StitchFile.PDown, r.Up ? StitchFile.PDown : StitchFile.PUp },
                    Biases = { r.Up ? StitchFile.BUp : StitchFile.BDown, r.Up ? StitchFile.BDown : StitchFile.BUp },
                },
            },
            AblateEdit a => new Intervention { Hook = a.Hook, Ablate = new Ablate { Mean = a.Mean is null ? null : TensorCodec.ToProto(a.Mean) } },
            ReplaceEdit r => new Intervention { Hook = r.Hook, Replace = TensorCodec.ToProto(r.Value) },
            _ => throw new ArgumentOutOfRangeException(nameof(edit), edit, "unknown stream edit"),
        };

        private static Common.Tensor Ids(int[][] rows) =>
            TensorCodec.ToProto(new HostTensor("token_ids", DType.I32, [rows.Length, rows[0].Length], MemoryMarshal.AsBytes(rows.SelectMany(x => x).ToArray().AsSpan()).ToArray()));
    }

    public void Dispose()
    {
        if (_channel.IsValueCreated) _channel.Value.Dispose();
    }
}
