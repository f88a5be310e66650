using Stitching.Core.Activations;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Operations;
using Stitching.Core.Safetensors;
using Stitching.Core.Tensors;
using Stitching.Stitch.Artifacts;
using Stitching.Stitch.Data;
using Stitching.Stitch.Fitting;
using Stitching.Stitch.Matching;
using Stitching.Stitch.Splice;
using static TorchSharp.torch;
using Common = Stitching.Contracts.Common.V1;

namespace Stitching.Stitch;

/// <summary>gRPC surface of the stitch service (stitch.proto documents each RPC): validate, map, delegate.</summary>
public sealed class StitchGrpcService(ArtifactStore store, RowSources sources, LayerMatcher matcher, SpliceEvaluator splice,
    OperationRunner runner, TorchWorker worker) : StitchService.StitchServiceBase
{
    public override async Task<MatchLayersResponse> MatchLayers(MatchLayersRequest request, ServerCallContext context)
    {
        var settings = MatchSettings.From(request.MaxTokens, request.SvccaVariance, request.Rule, request.IncludeEmbeddings, request.HooksA, request.HooksB);
        var m = await matcher.MatchAsync(ActivationSet(request.ActivationSetA, "activation_set_a"), ActivationSet(request.ActivationSetB, "activation_set_b"), settings, context.CancellationToken);
        return new MatchLayersResponse
        {
            HooksA = { m.HooksA }, HooksB = { m.HooksB }, Svcca = { m.Svcca }, HeldoutSvcca = { m.HeldOutSvcca }, Cka = { m.Cka },
            FvuUp = { m.FvuUp }, FvuDown = { m.FvuDown }, BestB = { m.Best }, Tokens = m.Tokens, SvccaVariance = m.Settings.Variance,
            Rule = m.Settings.Rule, FitTokens = m.FitTokens, HeldoutTokens = m.HeldOutTokens,
        };
    }

    public override Task<Common.Operation> Fit(FitRequest request, ServerCallContext context)
    {
        FitSettings.From(request);
        FitHandler.TargetOf(request);
        var (a, b) = sources.OpenPair(request.A, request.B); // unknown ids, kinds, widths and row counts fail here, before the job starts
        RowSources.Close(a);
        RowSources.Close(b);
        return Task.FromResult(runner.Start(FitHandler.OperationKind, Any.Pack(request)));
    }

    public override async Task<Common.ArtifactManifest> ImportStitch(ImportStitchRequest request, ServerCallContext context)
    {
        var source = ArtifactIds.Validate(request.Tensors, "tensors");
        var target = new Common.ArtifactRef { Kind = StitchArtifact.Kind, Id = ArtifactIds.Validate(request.Id, "id") };
        var file = string.IsNullOrEmpty(request.File) ? RowSources.DefaultFile : request.File;
        if (!store.Exists(source)) throw StitchingException.NotFound($"tensors: {source.Display()} does not exist; upload the file with ArtifactsService.UploadTensors first.", "tensors");
        using var reader = SafetensorsReader.FromBytes(store.ReadAllBytes(source, file), $"{source.Display()}/{file}");
        var host = StitchArtifact.TensorNames.Select(n => reader.Contains(n) ? reader.Read(n)
            : throw StitchingException.InvalidArgument("tensors", $"{source.Display()}/{file} has no tensor '{n}'; a stitch file holds P_up [d_A, d_B], b_up [d_B], P_down [d_B, d_A], b_down [d_A].")).ToList();
        var tensors = await worker.RunAsync(() => StitchArtifact.ToHost(StitchArtifact.FromHost(host, "tensors")), context.CancellationToken);
        var metadata = new Dictionary<string, string>(request.Metadata)
        {
            ["method"] = "import", ["source"] = source.Display(), ["width_a"] = tensors[0].Shape[0].ToString(), ["width_b"] = tensors[0].Shape[1].ToString(),
        };
        return StitchArtifact.Write(store, target, tensors, metadata, new Dictionary<string, double>(), "");
    }

    public override async Task<ApplyResponse> Apply(ApplyRequest request, ServerCallContext context)
    {
        var direction = ToDirection(request.Direction, allowRoundTrips: true);
        var stitch = StitchArtifact.Read(store, request.Stitch, "stitch");
        if (request.Activations is null) throw StitchingException.InvalidArgument("activations", "is required: a float tensor [..., d].");
        var input = TensorCodec.FromProto(request.Activations, "activations");
        var output = await worker.RunAsync(() =>
        {
            var s = StitchArtifact.FromHost(stitch, "stitch");
            var x = TorchTensors.ToTorchFloat(input, "activations");
            ExpectWidth(x, s.InputWidth(direction), "activations");
            return TorchTensors.ToHost(s.Apply(x, direction), "activations");
        }, context.CancellationToken);
        return new ApplyResponse { Activations = TensorCodec.ToProto(output) };
    }

    public override async Task<TransferDirectionResponse> TransferDirection(TransferDirectionRequest request, ServerCallContext context)
    {
        var direction = ToDirection(request.Direction, allowRoundTrips: false);
        var stitch = StitchArtifact.Read(store, request.Stitch, "stitch");
        if (request.Vectors is null) throw StitchingException.InvalidArgument("vectors", "is required: a float tensor [d] or [k, d].");
        var input = TensorCodec.FromProto(request.Vectors, "vectors");
        var output = await worker.RunAsync(() =>
        {
            var s = StitchArtifact.FromHost(stitch, "stitch");
            var v = TorchTensors.ToTorchFloat(input, "vectors");
            ExpectWidth(v, s.InputWidth(direction), "vectors");
            // v' = v P, no bias: a direction is not a position (paper sections 6-7)
            var moved = v.matmul(direction == StitchDirection.Up ? s.PUp : s.PDown);
            if (request.Renormalize) moved = moved / moved.norm(-1, keepdim: true).clamp_min(1e-12);
            return TorchTensors.ToHost(moved, "vectors");
        }, context.CancellationToken);
        return new TransferDirectionResponse { Vectors = TensorCodec.ToProto(output) };
    }

    public override Task<EvaluateSpliceResponse> EvaluateSplice(EvaluateSpliceRequest request, ServerCallContext context) =>
        splice.EvaluateAsync(request, context.CancellationToken);

    private Common.ArtifactManifest ActivationSet(Common.ArtifactRef? r, string field)
    {
        ArtifactIds.Validate(r, field);
        if (r!.Kind != ActivationSetLayout.Kind) throw StitchingException.InvalidArgument(field + ".kind", $"'{r.Kind}' is not '{ActivationSetLayout.Kind}'.");
        if (!store.Exists(r)) throw StitchingException.NotFound($"{field}: activation set {r.Id} does not exist; run Extract first or list artifacts.", field);
        return store.GetManifest(r);
    }

    private static void ExpectWidth(Tensor x, long width, string field)
    {
        if (x.dim() == 0 || x.shape[^1] != width)
            throw StitchingException.InvalidArgument(field, $"last dimension is {(x.dim() == 0 ? 0 : x.shape[^1])} but this direction of the stitch takes width {width}.");
    }

    private static StitchDirection ToDirection(Direction d, bool allowRoundTrips) => d switch
    {
        Direction.Up => StitchDirection.Up,
        Direction.Down => StitchDirection.Down,
        Direction.UpDown when allowRoundTrips => StitchDirection.UpDown,
        Direction.DownUp when allowRoundTrips => StitchDirection.DownUp,
        _ => throw StitchingException.InvalidArgument("direction", allowRoundTrips ? "choose UP, DOWN, UP_DOWN or DOWN_UP." : "choose UP (v P_up) or DOWN (v P_down)."),
    };
}
