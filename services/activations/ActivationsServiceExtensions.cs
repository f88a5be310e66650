using Microsoft.Extensions.DependencyInjection;
using Stitching.Activations.Extraction;
using Stitching.Activations.ModelHosting;
using Stitching.Core.Operations;
using Stitching.Hosting;

namespace Stitching.Activations;

/// <summary>Wiring of the activations service, shared by its own host and the all-in-one host.</summary>
public static class ActivationsServiceExtensions
{
    public const string GrpcName = "stitching.activations.v1.ActivationsService";

    public static WebApplicationBuilder AddActivationsService(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<ModelCatalog>();
        builder.Services.AddSingleton<ModelHost>();
        builder.Services.AddSingleton<Corpus>();
        builder.Services.AddSingleton<INamedCorpus, BrownNamedCorpus>();
        builder.Services.AddSingleton<IOperationHandler, ExtractHandler>();
        return builder.AddStitchingService(GrpcName, "Activations");
    }

    public static WebApplication MapActivationsService(this WebApplication app)
    {
        app.MapGrpcService<ActivationsGrpcService>();
        return app;
    }
}
