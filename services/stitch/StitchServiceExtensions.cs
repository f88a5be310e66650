using Stitching.Core.Forward;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Stitching.Core.Operations;
using Stitching.Hosting;
using Stitching.Stitch.Data;
using Stitching.Stitch.Operations;
using Stitching.Hosting.Clients;
using Stitching.Stitch.Matching;
using Stitching.Stitch.Splice;

namespace Stitching.Stitch;

/// <summary>Wiring of the stitch service, shared by its own host and the all-in-one host.</summary>
public static class StitchServiceExtensions
{
    public const string GrpcName = "stitching.stitch.v1.StitchService";

    public static WebApplicationBuilder AddStitchService(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<RowSources>();
        builder.Services.TryAddSingleton<ActivationsConnection>();
        builder.Services.AddSingleton<LayerMatcher>();
        builder.Services.AddSingleton<SpliceEvaluator>();
        builder.Services.AddSingleton<IOperationHandler, FitHandler>();
        return builder.AddStitchingService(GrpcName, "Stitch");
    }

    public static WebApplication MapStitchService(this WebApplication app)
    {
        app.MapGrpcService<StitchGrpcService>();
        return app;
    }
}
