using Stitching.Hosting;

namespace Stitching.Stitch;

/// <summary>Wiring of the stitch service, shared by its own host and the all-in-one host.</summary>
public static class StitchServiceExtensions
{
    public const string GrpcName = "stitching.stitch.v1.StitchService";

    public static WebApplicationBuilder AddStitchService(this WebApplicationBuilder builder) =>
        builder.AddStitchingService(GrpcName, "Stitch");

    public static WebApplication MapStitchService(this WebApplication app)
    {
        app.MapGrpcService<StitchGrpcService>();
        return app;
    }
}
