using Stitching.Core.Forward;
using Stitching.Core.Activations;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Caching;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Operations;
using Stitching.Core.Tensors;
using Stitching.Stitch.Artifacts;
using Stitching.Stitch.Data;
using Stitching.Core.Stitches;
using Stitching.Stitch.Matching;
using Stitching.Stitch.Operations;
using Stitching.Hosting.Clients;
using Stitching.Stitch.Splice;
using Stitching.Contracts.Activations.V1;
using static TorchSharp.torch;
using Common = Stitching.Contracts.Common.V1;

namespace Stitching.Stitch;

/// <summary>gRPC surface of the stitch service (stitch.proto documents each RPC): validate, map, delegate.</summary>
public sealed class StitchGrpcService(ArtifactStore store, IShardCache cache, RowSources sources, LayerMatcher matcher, SpliceEvaluator splice,
    ActivationsConnection activations, OperationRunner runner, TorchWorker worker) : StitchService.StitchServiceBase
{
    public override async Task<MatchLayersResponse> MatchLayers(MatchLayersRequest request, ServerCallContext context)
    {
        var settings = MatchSettings.From(request.MaxTokens, request.SvccaVariance, request.Rule, request.IncludeEmbeddings, request.HooksA, request.HooksB);
        var m = await matcher.MatchAsync(ActivationSetReader.Open(store, cache, request.ActivationSetA, "activation_set_a"),
            ActivationSetReader.Open(store, cache, request.ActivationSetB, "activation_set_b"), settings, context.CancellationToken);
        return new MatchLayersResponse
        {
            HooksA = { m.HooksA }, HooksB = { m.HooksB }, Svcca = { m.Svcca }, HeldoutSvcca = { m.HeldOutSvcca }, Cka = { m.Cka },
            FvuUp = { m.FvuUp }, FvuDown = { m.FvuDown }, BestB = { m.Best }, Tokens = m.Tokens, SvccaVariance = m.Settings.Variance,
            Rule = m.Settings.Rule, FitTokens = m.FitTokens, HeldoutTokens = m.HeldOutTokens,
        };
    }

    public override Task<Common.Operation> Fit(FitRequest request, ServerCallContext context)
    {
        FitRequests.ToSettings(request);
        FitHandler.TargetOf(request);
        var (a, b) = sources.OpenPair(request.A, request.B); // unknown ids, kinds, widths and row counts fail here, before the job starts
        RowSources.Close(a);
        RowSources.Close(b);
        return Task.FromResult(runner.Start(FitHandler.OperationKind, Any.Pack(request)));
    }

    public override async Task<Common.ArtifactManifest> ImportStitch(ImportStitchRequest request, ServerCallContext context)
    {
        store.Require(request.Tensors, ArtifactKinds.Tensors, "tensors", "upload the file with ArtifactsService.UploadTensors first.");
        var source = request.Tensors;
        var target = new Common.ArtifactRef { Kind = StitchFile.Kind, Id = ArtifactIds.Validate(request.Id, "id") };
        var file = string.IsNullOrEmpty(request.File) ? RowSources.DefaultFile : request.File;
        var host = StitchFile.Read(store.ReadAllBytes(source, file), $"{source.Display()}/{file}", "tensors");
        var tensors = await worker.RunAsync(() => StitchFile.ToHost(StitchFile.ToStitch(host, "tensors")), context.CancellationToken);
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
            var s = StitchFile.ToStitch(stitch, "stitch");
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
            var s = StitchFile.ToStitch(stitch, "stitch");
            var v = TorchTensors.ToTorchFloat(input, "vectors");
            ExpectWidth(v, s.InputWidth(direction), "vectors");
            var moved = s.MoveDirection(v, direction);
            if (request.Renormalize) moved = moved / moved.norm(-1, keepdim: true).clamp_min(1e-12);
            return TorchTensors.ToHost(moved, "vectors");
        }, context.CancellationToken);
        return new TransferDirectionResponse { Vectors = TensorCodec.ToProto(output) };
    }

    public override async Task<EvaluateSpliceResponse> EvaluateSplice(EvaluateSpliceRequest r, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        var (modelA, modelB) = (Model(r.ModelA, "model_a"), Model(r.ModelB, "model_b"));
        if (r.LayerA < 0 || r.LayerB < 0) throw StitchingException.InvalidArgument(r.LayerA < 0 ? "layer_a" : "layer_b", "must be >= 0.");
        if (r.BatchSize < 0) throw StitchingException.InvalidArgument("batch_size", $"must be positive (0 = default {SpliceSettings.DefaultBatchSize}).");
        if (r.MaxRows < 0) throw StitchingException.InvalidArgument("max_rows", $"must be positive (0 = default {SpliceSettings.DefaultMaxRows}).");
        var stitch = StitchArtifact.Read(store, r.Stitch, "stitch");
        // The splice points and the stitch's widths are checked against the models before any forward pass.
        foreach (var (model, layer, field, width, side) in new[] { (modelA, r.LayerA, "layer_a", stitch[0].Shape[0], "model_a"), (modelB, r.LayerB, "layer_b", stitch[0].Shape[1], "model_b") })
        {
            var shape = await activations.ShapeAsync(model, ct);
            if (layer >= shape.Layers) throw StitchingException.InvalidArgument(field, $"is {layer}; {model.Model} has blocks 0..{shape.Layers - 1}, so splice points 0..{shape.Layers - 1}.");
            if (width != shape.Width)
                throw StitchingException.FailedPrecondition($"stitch: it maps width {stitch[0].Shape[0]} -> {stitch[0].Shape[1]}, but {side} ({model.Model}) has width {shape.Width}; fit a stitch between these models.", "stitch");
        }
        var rows = await SpliceRowsAsync(r, ct);
        var settings = new SpliceSettings(modelA, modelB, r.LayerA, r.LayerB, r.BatchSize == 0 ? SpliceSettings.DefaultBatchSize : r.BatchSize);
        var result = await splice.EvaluateAsync(activations.Models(r.Stitch), stitch, rows, settings, ct);
        var response = new EvaluateSpliceResponse { Sequences = result.Sequences, Tokens = result.Tokens, Seconds = result.Seconds };
        response.Rows.AddRange(result.Rows.Select(x => new SpliceRow
        {
            Run = x.Run, Finisher = x.Finisher, Ce = x.Ce, CleanCe = x.CleanCe, ZeroAblationCe = x.ZeroAblationCe,
            MeanAblationCe = x.MeanAblationCe, LossRecovered = x.LossRecovered,
        }));
        return response;
    }

    /// <summary>The token rows a splice request names: token_ids [rows, T], or texts tokenized by model A.</summary>
    private async Task<IReadOnlyList<int[]>> SpliceRowsAsync(EvaluateSpliceRequest r, CancellationToken ct)
    {
        var maxRows = r.MaxRows == 0 ? SpliceSettings.DefaultMaxRows : r.MaxRows;
        if (r.TokenIds is not null)
        {
            var host = TensorCodec.FromProto(r.TokenIds, "token_ids");
            if (host.Shape.Length != 2 || host.Shape[1] < 2 || host.Shape[0] == 0)
                throw StitchingException.InvalidArgument("token_ids", $"shape [{string.Join(", ", host.Shape)}] must be [rows, T] with rows >= 1 and T >= 2.");
            return host.ToInts("token_ids").Chunk((int)host.Shape[1]).Take(maxRows).ToList();
        }
        if (r.Texts.Count == 0) throw StitchingException.InvalidArgument("texts", "give held-out texts or token_ids.");
        var context = r.ContextLength == 0 ? SpliceSettings.DefaultContext : r.ContextLength;
        if (context < 2) throw StitchingException.InvalidArgument("context_length", $"must be at least 2 (default {SpliceSettings.DefaultContext}).");
        var rows = await activations.TokenRowsAsync(r.ModelA, r.Texts, context, maxRows, ct);
        if (rows.Count == 0) throw StitchingException.InvalidArgument("texts", $"hold fewer than {context} tokens; add text or lower context_length.");
        return rows;
    }

    private static LanguageModelRef Model(ModelSpec? m, string field) =>
        m is null || string.IsNullOrEmpty(m.Model)
            ? throw StitchingException.InvalidArgument(field + ".model", "is required; name a model (see ActivationsService.ListModels).")
            : new LanguageModelRef(m.Model, m.Dtype, m.Device);

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
