using Grpc.Core;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Compute;
using Stitching.Core.Errors;
using Stitching.Core.Forward;
using Stitching.Core.Tensors;
using Stitching.Eval.Operations;
using Stitching.Eval.Sae;
using Stitching.Core.Operations;
using Google.Protobuf.WellKnownTypes;
using Stitching.Hosting.Clients;
using Stitching.Sae.Storage;

namespace Stitching.Eval;

/// <summary>gRPC surface of the eval service (eval.proto documents each RPC): validate, map, delegate.</summary>
public sealed class EvalGrpcService(ArtifactStore store, TorchWorker worker, ActivationsConnection activations, SaeEvaluator saeEvaluator,
    ProbesHandler probes, SteeringHandler steering, FeaturesHandler features, OperationRunner runner)
    : EvalService.EvalServiceBase
{
    public const int DefaultBatchSize = 8, MaxRows = 1 << 14;

    public override async Task<SaeEvaluation> EvaluateSae(EvaluateSaeRequest r, ServerCallContext context)
    {
        var ct = context.CancellationToken;
        if (r.Model is null || string.IsNullOrEmpty(r.Model.Model)) throw StitchingException.InvalidArgument("model.model", "is required; name a model (see ActivationsService.ListModels).");
        var model = new LanguageModelRef(r.Model.Model, r.Model.Dtype, r.Model.Device);
        Check.InRange(r.BatchSize, 0, 256, "batch_size", $"rows per Forward call; 0 = default {DefaultBatchSize}");
        Check.InRange(r.MaxRows, 0, MaxRows, "max_rows", "0 = every row");
        if (r.TokenIds is null) throw StitchingException.InvalidArgument("token_ids", "give held-out token rows [rows, T].");
        var host = TensorCodec.FromProto(r.TokenIds, "token_ids");
        if (host.Shape.Length != 2 || host.Shape[0] == 0 || host.Shape[1] < 2)
            throw StitchingException.InvalidArgument("token_ids", $"shape [{string.Join(", ", host.Shape)}] must be [rows, T] with rows >= 1 and T >= 2.");
        var rows = host.ToInts("token_ids").Chunk((int)host.Shape[1]).Take(r.MaxRows == 0 ? MaxRows : r.MaxRows).ToList();
        var described = await worker.RunAsync(() => SaeArtifacts.Describe(store, r.Sae, "sae"), ct);
        var hook = string.IsNullOrEmpty(r.Hook) ? described.Hook : Check.Name(r.Hook, "hook", "a hook name");
        if (string.IsNullOrEmpty(hook)) throw StitchingException.InvalidArgument("hook", "the SAE names no hook; give the hook it reads.");
        var info = await activations.DescribeAsync(model, ct);
        if (!info.Hooks.Contains(hook)) throw StitchingException.InvalidArgument("hook", $"'{Check.Shorten(hook)}' is not a hook of {info.Name}.");
        var sae = await worker.RunAsync(() => SaeArtifacts.Load(store, r.Sae!, "sae"), ct);
        try
        {
            var (batch, bos) = (r.BatchSize == 0 ? DefaultBatchSize : r.BatchSize, info.BosId >= 0 ? info.BosId : (int?)null);
            var e = r.Random is null
                ? await saeEvaluator.EvaluateAsync(activations.Models(), model, sae, hook, rows, batch, bos, ct)
                : await saeEvaluator.EvaluateRandomAsync(activations.Models(), model, sae.Config, r.Random.Seed, hook, rows, batch, bos, ct);
            var response = new SaeEvaluation
            {
                L0 = e.L0, Mse = e.Mse, Fvu = e.Fvu, ExplainedVariance = e.ExplainedVariance, Cosine = e.Cosine, DeadFraction = e.DeadFraction,
                CeClean = e.CeClean, CeSpliced = e.CeSpliced, CeDelta = e.CeDelta, CeZeroAblation = e.CeZeroAblation, CeMeanAblation = e.CeMeanAblation,
                LossRecovered = e.LossRecovered, LossRecoveredMean = e.LossRecoveredMean, Kl = e.Kl,
                Tokens = e.Tokens, PredictedTokens = e.PredictedTokens, Rows = e.Rows, Hook = hook,
            };
            response.DensityEdges.AddRange(e.DensityEdges);
            response.DensityCounts.AddRange(e.DensityCounts);
            return response;
        }
        finally { await worker.RunAsync(() => { sae.Dispose(); return 0; }, CancellationToken.None); }
    }

    public override async Task<Stitching.Contracts.Common.V1.Operation> EvaluateProbes(EvaluateProbesRequest request, ServerCallContext context)
    {
        await probes.ValidateAsync(request, context.CancellationToken); // unknown artifacts, hooks and widths fail here, before the job starts
        return runner.Start(ProbesHandler.OperationKind, Any.Pack(request));
    }

    public override async Task<Stitching.Contracts.Common.V1.Operation> EvaluateSteering(EvaluateSteeringRequest request, ServerCallContext context)
    {
        await steering.ValidateAsync(request, context.CancellationToken);
        return runner.Start(SteeringHandler.OperationKind, Any.Pack(request));
    }

    public override async Task<Stitching.Contracts.Common.V1.Operation> EvaluateFeatures(EvaluateFeaturesRequest request, ServerCallContext context)
    {
        await features.ValidateAsync(request, context.CancellationToken);
        return runner.Start(FeaturesHandler.OperationKind, Any.Pack(request));
    }
}
