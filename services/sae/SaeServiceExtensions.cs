using Microsoft.Extensions.DependencyInjection;
using Stitching.Core.Operations;
using Stitching.Hosting;
using Stitching.Sae.Operations;

namespace Stitching.Sae;

/// <summary>Wiring of the sae service, shared by its own host and the all-in-one host.</summary>
public static class SaeServiceExtensions
{
    public const string GrpcName = "stitching.sae.v1.SaeService";

    public static WebApplicationBuilder AddSaeService(this WebApplicationBuilder builder)
    {
        builder.Services.AddSingleton<IOperationHandler, TrainHandler>();
        return builder.AddStitchingService(GrpcName, "Sae");
    }

    public static WebApplication MapSaeService(this WebApplication app)
    {
        app.MapGrpcService<SaeGrpcService>();
        return app;
    }
}
