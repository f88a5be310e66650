using Google.Protobuf.WellKnownTypes;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Operations;
using Stitching.Hosting.Clients;

namespace Stitching.Eval.Experiments;

/// <summary>
/// "eval.experiment": runs <see cref="ExperimentRunner"/> on the normalised spec; the result is an ExperimentResult and
/// the report artifact is the operation's output. Resumable: after a host restart it runs again, and every stage that
/// finished (or whose operation its service resumed) is taken from the stage ledger, so a crash costs at most the
/// stage in progress. It orchestrates only, so it holds no compute slot.
/// </summary>
public sealed class ExperimentHandler(ArtifactStore store, ServiceChannels channels, StageLedger ledger) : IOperationHandler
{
    public const string OperationKind = "eval.experiment";
    public string Kind => OperationKind;
    public bool Resumable => true;
    public bool Orchestrates => true;

    /// <summary>The normalised spec and its hash; INVALID_ARGUMENT / NOT_FOUND (naming the field) before any job starts.</summary>
    public async Task<(ExperimentSpec Spec, string Hash)> ValidateAsync(RunExperimentRequest request, CancellationToken ct)
    {
        if (request.Spec is null) throw Core.Errors.StitchingException.InvalidArgument("spec", "is required (docs/experiments.md).");
        var spec = ExperimentSpecs.Normalize(request.Spec);
        var activations = new ActivationsService.ActivationsServiceClient(channels.For(ServiceChannels.Activations));
        foreach (var (model, field) in new[] { (spec.ModelA, "spec.model_a"), (spec.ModelB, "spec.model_b") })
        {
            try { await activations.DescribeModelAsync(new DescribeModelRequest { Model = model }, cancellationToken: ct); }
            catch (Grpc.Core.RpcException e) when (e.StatusCode is Grpc.Core.StatusCode.NotFound or Grpc.Core.StatusCode.InvalidArgument)
            {
                throw e.StatusCode == Grpc.Core.StatusCode.NotFound
                    ? Core.Errors.StitchingException.NotFound($"{field}.model: {e.Status.Detail}", field + ".model")
                    : Core.Errors.StitchingException.InvalidArgument(field + ".model", e.Status.Detail);
            }
        }
        return (spec, ExperimentSpecs.Hash(spec));
    }

    public async Task ExecuteAsync(OperationContext context, CancellationToken ct)
    {
        var request = context.SpecAs<RunExperimentRequest>();
        var spec = ExperimentSpecs.Normalize(request.Spec);
        var hash = ExperimentSpecs.Hash(spec);
        var stages = new ExperimentStages(channels, ledger, context, ExperimentRunner.CountStages(spec), ct);
        var result = await new ExperimentRunner(store, stages, spec, hash, ct).ExecuteAsync();
        context.AddOutput(result.Report);
        context.SetResult(result);
    }
}
