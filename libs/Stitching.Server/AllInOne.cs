using Microsoft.AspNetCore.Builder;
using Stitching.Activations;
using Stitching.Eval;
using Stitching.Hosting;
using Stitching.Sae;
using Stitching.Stitch;

namespace Stitching.Server;

/// <summary>All four services composed in one process on one port: the embedded default.</summary>
public static class AllInOne
{
    public static WebApplicationBuilder AddAllServices(this WebApplicationBuilder builder) =>
        builder.AddStitchingDefaults("all-in-one")
            .AddActivationsService()
            .AddStitchService()
            .AddSaeService()
            .AddEvalService();

    public static WebApplication MapAllServices(this WebApplication app) =>
        app.MapStitchingDefaults()
            .MapActivationsService()
            .MapStitchService()
            .MapSaeService()
            .MapEvalService();
}
