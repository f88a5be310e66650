using Microsoft.Extensions.DependencyInjection.Extensions;
using Stitching.Core.Operations;
using Stitching.Eval.Experiments;
using Stitching.Eval.Features;
using Stitching.Eval.Operations;
using Stitching.Eval.Probes;
using Stitching.Eval.Sae;
using Stitching.Eval.Steering;
using Stitching.Hosting;
using Stitching.Hosting.Clients;

namespace Stitching.Eval;

/// <summary>Wiring of the eval service, shared by its own host and the all-in-one host.</summary>
public static class EvalServiceExtensions
{
    public const string GrpcName = "stitching.eval.v1.EvalService";

    public static WebApplicationBuilder AddEvalService(this WebApplicationBuilder builder)
    {
        builder.Services.TryAddSingleton<ActivationsConnection>();
        builder.Services.TryAddSingleton<ServiceChannels>();
        builder.Services.AddSingleton<StageLedger>();
        builder.Services.AddSingleton<ExperimentPlanner>();
        builder.Services.AddSingleton<ExperimentHandler>();
        builder.Services.AddSingleton<IOperationHandler>(sp => sp.GetRequiredService<ExperimentHandler>());
        builder.Services.AddSingleton<SaeEvaluator>();
        builder.Services.AddSingleton<ProbeEvaluator>();
        builder.Services.AddSingleton<ProbesHandler>();
        builder.Services.AddSingleton<IOperationHandler>(sp => sp.GetRequiredService<ProbesHandler>());
        builder.Services.AddSingleton<SteeringEvaluator>();
        builder.Services.AddSingleton<SteeringHandler>();
        builder.Services.AddSingleton<IOperationHandler>(sp => sp.GetRequiredService<SteeringHandler>());
        builder.Services.AddSingleton<FeatureEvaluator>();
        builder.Services.AddSingleton<FeaturesHandler>();
        builder.Services.AddSingleton<IOperationHandler>(sp => sp.GetRequiredService<FeaturesHandler>());
        return builder.AddStitchingService(GrpcName, "Eval");
    }

    public static WebApplication MapEvalService(this WebApplication app)
    {
        app.MapGrpcService<EvalGrpcService>();
        app.MapGrpcService<ExperimentsGrpcService>();
        return app;
    }
}
