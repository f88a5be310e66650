using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Stitching.Contracts.Sae.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Operations;
using Stitching.Core.Stitches;
using Stitching.Core.Tensors;
using Stitching.Sae.Interop;
using Stitching.Sae.Weights;
using Stitching.Sae.Operations;
using Stitching.Sae.Storage;
using Stitching.Sae.Training;
using Stitching.Sae.Transfer;
using Stitching.Sae.WarmStart;
using Common = Stitching.Contracts.Common.V1;

namespace Stitching.Sae;

/// <summary>gRPC surface of the sae service (sae.proto documents each RPC): validation and mapping only.</summary>
public sealed class SaeGrpcService(ArtifactStore store, TorchWorker worker, OperationRunner runner, PathPolicy paths) : SaeService.SaeServiceBase
{
    public override Task<Common.Operation> Train(TrainRequest request, ServerCallContext context)
    {
        var settings = TrainRequests.ToSettings(request, store);
        if (settings.Id is { } id && store.Exists(TrainRequests.SaeRef(id)))
            throw StitchingException.AlreadyExists($"id: SAE {id} already exists; artifacts are immutable, so choose another id (or leave it empty).", "id");
        return Task.FromResult(runner.Start(TrainHandler.OperationKind, Any.Pack(request)));
    }

    public override async Task<SaeInfo> Transfer(TransferRequest request, ServerCallContext context)
    {
        SaeArtifacts.Describe(store, request.Sae, "sae");
        var stitchManifest = store.Require(request.Stitch, StitchFile.Kind, "stitch", "fit or import one first.");
        var stitchRef = request.Stitch;
        if (!string.IsNullOrEmpty(request.Id)) ArtifactIds.Validate(request.Id, "id");
        if (!string.IsNullOrEmpty(request.Model)) Check.Name(request.Model, "model", "a model name");
        if (!string.IsNullOrEmpty(request.Hook)) Check.Name(request.Hook, "hook", "a hook name");
        var id = string.IsNullOrEmpty(request.Id) ? ContentIds.Of("sae-x-", $"{request.Sae?.Id}|{stitchRef.Id}|{request.RenormalizeDecoder}|{request.Model}|{request.Hook}") : request.Id;
        var output = new Common.ArtifactRef { Kind = SaeArtifacts.Kind, Id = id };
        if (store.Exists(output)) return SaeArtifacts.Describe(store, output, "id");
        var stitchTensors = StitchFile.Read(store.ReadAllBytes(stitchRef, StitchFile.FileName), $"{stitchRef.Id}/{StitchFile.FileName}", "stitch");
        var model = string.IsNullOrEmpty(request.Model) ? stitchManifest.Metadata.GetValueOrDefault("model_b", "") : request.Model;
        var hook = string.IsNullOrEmpty(request.Hook) ? stitchManifest.Metadata.GetValueOrDefault("hook_b", "") : request.Hook;
        // The transferred SAE costs what its stitch cost (the transfer's own matmuls are not counted).
        var ledger = stitchManifest.Ledger();
        var metadata = new Dictionary<string, string> { ["source_sae"] = request.Sae!.Id, ["stitch"] = stitchRef.Id, ["renormalized"] = request.RenormalizeDecoder.ToString().ToLowerInvariant() };
        return await worker.RunAsync(() =>
        {
            using var source = SaeArtifacts.Load(store, request.Sae, "sae");
            using var transferred = FolderTransfer.Compose(source, StitchFile.ToStitch(stitchTensors, "stitch"), request.RenormalizeDecoder, model, hook);
            return SaeArtifacts.Save(store, output, transferred, metadata: metadata, ledger: ledger);
        }, context.CancellationToken);
    }

    public override async Task<EncodeResponse> Encode(EncodeRequest request, ServerCallContext context) =>
        new() { Latents = await ApplyAsync(request.Sae, request.Activations, "activations", "[n, d_in] float tensor", c => (c.DIn, "d_in"), (sae, x) => sae.Encode(x), "latents", context.CancellationToken) };

    public override async Task<DecodeResponse> Decode(DecodeRequest request, ServerCallContext context) =>
        new() { Reconstruction = await ApplyAsync(request.Sae, request.Latents, "latents", "[n, d_sae] float tensor", c => (c.DSae, "d_sae"), (sae, f) => sae.Decode(f), "reconstruction", context.CancellationToken) };

    /// <summary>Loads an SAE, checks the input is [n, width] and applies one of its functions (torch thread).</summary>
    private async Task<Common.Tensor> ApplyAsync(Common.ArtifactRef? saeRef, Common.Tensor? input, string field, string shape,
        Func<SaeConfig, (int Width, string Name)> width, Func<SaeParameters, TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> apply, string outputName, CancellationToken ct)
    {
        var x = TensorCodec.FromProto(input ?? throw StitchingException.InvalidArgument(field, $"send a {shape}."), field);
        return await worker.RunAsync(() =>
        {
            using var scope = TorchSharp.torch.NewDisposeScope();
            using var sae = SaeArtifacts.Load(store, saeRef!, "sae");
            var (w, name) = width(sae.Config);
            return TensorCodec.ToProto(TorchTensors.ToHost(apply(sae, Rows(x, w, field, name)), outputName));
        }, ct);
    }

    public override async Task<SaeInfo> Import(ImportRequest request, ServerCallContext context)
    {
        if (request.Format is not ("" or "saelens" or "sparsify")) throw StitchingException.InvalidArgument("format", $"'{Check.Shorten(request.Format)}' is not a format; use saelens or sparsify (empty = detect).");
        if (!string.IsNullOrEmpty(request.Id)) ArtifactIds.Validate(request.Id, "id");
        if (!string.IsNullOrEmpty(request.Model)) Check.Name(request.Model, "model", "a model name");
        if (!string.IsNullOrEmpty(request.Hook)) Check.Name(request.Hook, "hook", "a hook name");
        var folder = paths.ResolveReadableFolder(request.Path, "path");
        var format = string.IsNullOrEmpty(request.Format)
            ? File.Exists(Path.Combine(folder, SparsifyFormat.WeightsFile)) ? "sparsify" : "saelens"
            : request.Format;
        var files = Directory.EnumerateFiles(folder).Order().Select(p => ContentIds.Sha256Hex(File.ReadAllBytes(p)));
        var id = string.IsNullOrEmpty(request.Id) ? ContentIds.Of("sae-imp-", string.Join("|", files) + $"|{request.Model}|{request.Hook}") : request.Id;
        var output = new Common.ArtifactRef { Kind = SaeArtifacts.Kind, Id = id };
        if (store.Exists(output)) return SaeArtifacts.Describe(store, output, "id");
        return await worker.RunAsync(() =>
        {
            using var loaded = format == "sparsify"
                ? SparsifyFormat.ReadFolder(folder, request.Model, request.Hook)
                : SaeLensFormat.ReadFolder(folder);
            var config = loaded.Config with
            {
                Model = string.IsNullOrEmpty(request.Model) ? loaded.Config.Model : request.Model,
                Hook = string.IsNullOrEmpty(request.Hook) ? loaded.Config.Hook : request.Hook,
            };
            using var sae = loaded.Clone(config);
            return SaeArtifacts.Save(store, output, sae, metadata: new Dictionary<string, string> { ["imported_from"] = folder, ["format"] = format });
        }, context.CancellationToken);
    }

    public override async Task<ExportResponse> Export(ExportRequest request, ServerCallContext context)
    {
        var folder = paths.ResolveNewFolder(request.Path, "path"); // decided before the SAE is looked up
        SaeArtifacts.Describe(store, request.Sae, "sae");
        if (folder.StartsWith(PathPolicy.RealPath(store.Root) + "/", StringComparison.Ordinal) || folder == PathPolicy.RealPath(store.Root))
            throw StitchingException.PermissionDenied("path: is inside the artifact store; export somewhere else (stored artifacts are never written to).", "path");
        return await worker.RunAsync(() =>
        {
            // SAELens saves with the scaling folded into the weights; so do we (same function, "none").
            using var stored = SaeArtifacts.Load(store, request.Sae, "sae");
            using var sae = SaeLensFormat.Fold(stored);
            var response = new ExportResponse { Path = folder };
            response.Files.AddRange(SaeLensFormat.WriteFolder(folder, sae));
            return response;
        }, context.CancellationToken);
    }

    public override Task<SaeInfo> Describe(DescribeRequest request, ServerCallContext context) =>
        Task.FromResult(SaeArtifacts.Describe(store, request.Sae, "sae"));

    public override async Task<CompareResponse> Compare(CompareRequest request, ServerCallContext context)
    {
        SaeArtifacts.Describe(store, request.Scratch, "scratch");
        SaeArtifacts.Describe(store, request.Warm, "warm");
        var scratch = SaeArtifacts.Log(store, request.Scratch) ?? throw StitchingException.FailedPrecondition($"SAE {request.Scratch.Id} has no training log; compare SAEs trained by this service.", "scratch");
        var warm = SaeArtifacts.Log(store, request.Warm) ?? throw StitchingException.FailedPrecondition($"SAE {request.Warm.Id} has no training log; compare SAEs trained by this service.", "warm");
        if (scratch.Rows.Count == 0 || warm.Rows.Count == 0) throw StitchingException.FailedPrecondition("a training log is empty; train for at least log_every steps.", "scratch");
        foreach (var t in request.Thresholds) Check.InRange(t, -1e6, 1, "thresholds", "explained variances");
        foreach (var t in request.RelativeThresholds) Check.InRange(t, 0, 1e6, "relative_thresholds", "fractions of scratch's final explained variance");
        if (request.Window < 0) throw StitchingException.InvalidArgument("window", "must be positive (default 5).");
        var absolute = request.Thresholds.Count > 0 ? request.Thresholds.ToArray() : [0.5, 0.7, 0.8, 0.9];
        var relative = request.RelativeThresholds.Count > 0 ? request.RelativeThresholds.ToArray() : [0.9, 0.95];
        var window = request.Window > 0 ? request.Window : 5;
        var (heldScratch, heldWarm) = (SaeArtifacts.HeldOut(store, request.Scratch), SaeArtifacts.HeldOut(store, request.Warm));
        var curves = !request.TrainingBatch && heldScratch is { Rows.Count: > 0 } && heldWarm is { Rows.Count: > 0 }
            ? WarmStartComparison.Curves.HeldOut(heldScratch.Rows, heldWarm.Rows)
            : WarmStartComparison.Curves.TrainingBatch(scratch.Rows, warm.Rows, window);
        var warmLedger = store.GetManifest(request.Warm).Ledger();
        var response = new CompareResponse
        {
            ScratchFit = Fit(WarmStartComparison.FitPowerLaw(scratch.Rows)),
            WarmFit = Fit(WarmStartComparison.FitPowerLaw(warm.Rows)),
            StitchFlops = warmLedger.FlopsOf(FlopLedger.StitchFit),
            ScratchLedger = store.GetManifest(request.Scratch).Ledger().ToProto(), WarmLedger = warmLedger.ToProto(),
            ScratchFinalExplainedVariance = curves.ScratchFinal, WarmFinalExplainedVariance = curves.WarmFinal,
            ScratchInitialExplainedVariance = curves.ScratchInitial, WarmInitialExplainedVariance = curves.WarmInitial,
            MeasuredOn = curves.MeasuredOn,
        };
        foreach (var t in curves.Thresholds(absolute, relative))
            response.Rows.Add(new ThresholdRow
            {
                Threshold = t.Threshold, RelativeToScratchFinal = t.RelativeToScratchFinal, ExplainedVariance = t.ExplainedVariance,
                ScratchFlops = t.ScratchFlops ?? 0, WarmFlops = t.WarmFlops ?? 0, RelativeSaving = t.RelativeSaving,
            });
        response.ScratchCurve.AddRange(curves.ScratchPoints.Select(Point));
        response.WarmCurve.AddRange(curves.WarmPoints.Select(Point));
        var (scratchCosines, warmCosines) = await worker.RunAsync(
            () => (DecoderCosines(request.Scratch), DecoderCosines(request.Warm)), context.CancellationToken);
        (response.ScratchDecoderCosine, response.WarmDecoderCosine) = (Mean(scratchCosines), Mean(warmCosines));
        response.ScratchDecoderCosines.AddRange(scratchCosines.Select(c => (float)c));
        response.WarmDecoderCosines.AddRange(warmCosines.Select(c => (float)c));
        return response;
    }

    private static CurvePoint Point(WarmStartComparison.CurvePoint p) => new() { Flops = p.Flops, Tokens = p.Tokens, ExplainedVariance = p.ExplainedVariance };

    private static double Mean(double[] values) => values.Length == 0 ? double.NaN : values.Average();

    /// <summary>Per-latent cosines of the initial and final decoder rows; empty when no initial decoder is stored.</summary>
    private double[] DecoderCosines(Common.ArtifactRef r)
    {
        var init = SaeArtifacts.InitDecoder(store, r);
        if (init is null) return [];
        using var sae = SaeArtifacts.Load(store, r, "sae");
        return WarmStartComparison.RowCosines(init, sae.WDec);
    }

    private static PowerLawFit Fit(WarmStartComparison.PowerLaw p) => new() { A = p.A, Beta = p.Beta, Points = p.Points };

    private static TorchSharp.torch.Tensor Rows(HostTensor t, int width, string field, string what)
    {
        if (t.Shape.Length != 2 || t.Shape[1] != width)
            throw StitchingException.InvalidArgument(field, $"has shape [{string.Join(", ", t.Shape)}]; the SAE needs [n, {width}] ({what} = {width}).");
        return TorchTensors.ToTorchFloat(t, field);
    }
}
