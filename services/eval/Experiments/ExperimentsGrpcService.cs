using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Eval.V1;
using Stitching.Core.Operations;

namespace Stitching.Eval.Experiments;

/// <summary>gRPC surface of experiments (experiment.proto): validate, join a running twin or start, and plan.</summary>
public sealed class ExperimentsGrpcService(ExperimentHandler handler, ExperimentPlanner planner, OperationRunner runner) : ExperimentsService.ExperimentsServiceBase
{
    private static readonly object StartLock = new();

    public override async Task<Operation> RunExperiment(RunExperimentRequest request, ServerCallContext context)
    {
        var (spec, hash) = await handler.ValidateAsync(request, context.CancellationToken);
        lock (StartLock) // two submissions of one spec at once get one operation
        {
            foreach (var op in runner.List(ExperimentHandler.OperationKind, OperationState.Unspecified, 1000))
                if (!OperationRunner.IsFinal(op.State) && op.Spec is not null && op.Spec.Is(RunExperimentRequest.Descriptor)
                    && ExperimentSpecs.Hash(ExperimentSpecs.Normalize(op.Spec.Unpack<RunExperimentRequest>().Spec)) == hash)
                    return op;
            return runner.Start(ExperimentHandler.OperationKind, Any.Pack(new RunExperimentRequest { Spec = spec }));
        }
    }

    public override Task<ExperimentPlan> PlanExperiment(RunExperimentRequest request, ServerCallContext context)
    {
        if (request.Spec is null) throw Core.Errors.StitchingException.InvalidArgument("spec", "is required (docs/experiments.md).");
        return planner.PlanAsync(request.Spec, context.CancellationToken);
    }
}
