using Grpc.AspNetCore.HealthChecks;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;
using Stitching.Core.Artifacts;
using Stitching.Core.Caching;
using Stitching.Core.Compute;
using Stitching.Core.Operations;
using Stitching.Core.Telemetry;
using Stitching.Hosting.Endpoints;
using Stitching.Hosting.Health;

namespace Stitching.Hosting;

/// <summary>
/// The one place hosting is wired. A service host is: AddStitchingDefaults, its own Add...Service,
/// Build, MapStitchingDefaults, its own Map...Service. The all-in-one host adds all four.
/// </summary>
public static class StitchingHosting
{
    public static WebApplicationBuilder AddStitchingDefaults(this WebApplicationBuilder builder, string hostName)
    {
        Core.Compute.TorchEnvironment.Apply();
        var services = builder.Services;
        var configured = builder.Configuration.GetSection(StitchingOptions.Section).Get<StitchingOptions>() ?? new StitchingOptions();
        services.AddOptions<StitchingOptions>()
            .Bind(builder.Configuration.GetSection(StitchingOptions.Section))
            .PostConfigure(o => o.RedisUrl = string.IsNullOrEmpty(o.RedisUrl) ? builder.Configuration["REDIS_URL"] : o.RedisUrl);

        // gRPC without TLS needs HTTP/2 only (h2c); TLS terminates at the ingress in Kubernetes.
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2);
            // TLS: PEM certificate and key for https:// endpoints (ASPNETCORE_URLS=https://0.0.0.0:50051).
            if (!string.IsNullOrEmpty(configured.Tls.CertificatePath))
                k.ConfigureHttpsDefaults(h => h.ServerCertificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPemFile(
                    configured.Tls.CertificatePath, string.IsNullOrEmpty(configured.Tls.KeyPath) ? null : configured.Tls.KeyPath));
        });
        // Per-request lines only when asked for (Logging__LogLevel__Microsoft.AspNetCore.Hosting.Diagnostics=Information):
        // failed RPCs are logged once at Warning, with status and field, by the error interceptor.
        foreach (var category in new[] { "Microsoft.AspNetCore.Hosting.Diagnostics", "Microsoft.AspNetCore.Routing", "Grpc.AspNetCore.Server" })
            if (builder.Configuration[$"Logging:LogLevel:{category}"] is null) builder.Logging.AddFilter(category, LogLevel.Warning);
        services.AddGrpc(o =>
        {
            o.Interceptors.Add<ErrorInterceptor>();
            o.Interceptors.Add<AuthInterceptor>();
            o.MaxReceiveMessageSize = configured.MaxMessageBytes;
            o.MaxSendMessageSize = configured.MaxMessageBytes;
        });
        services.AddGrpcReflection();
        services.AddSingleton<AuthInterceptor>();

        services.AddSingleton(sp => new ArtifactStore(sp.GetRequiredService<IOptions<StitchingOptions>>().Value.StoreRoot, sp.GetRequiredService<ILogger<ArtifactStore>>()));
        services.AddSingleton<IShardCache>(sp =>
        {
            var o = sp.GetRequiredService<IOptions<StitchingOptions>>().Value;
            var store = sp.GetRequiredService<ArtifactStore>();
            return string.IsNullOrEmpty(o.RedisUrl)
                ? new StoreOnlyShardCache(store)
                : new RedisShardCache(store, new RedisCacheOptions(o.RedisUrl), sp.GetRequiredService<ILogger<RedisShardCache>>());
        });
        services.AddSingleton<OperationRecords>();
        services.AddSingleton(sp => new OperationRunner(
            sp.GetServices<IOperationHandler>(), sp.GetRequiredService<OperationRecords>(), sp.GetRequiredService<ILogger<OperationRunner>>(),
            sp.GetRequiredService<IOptions<StitchingOptions>>().Value.MaxConcurrentOperations,
            sp.GetRequiredService<IOptions<StitchingOptions>>().Value.MaxPendingOperations,
            sp.GetRequiredService<IOptions<StitchingOptions>>().Value.MaxConcurrentExperiments));
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<StitchingOptions>>().Value;
            return new Stitching.Core.Errors.PathPolicy(o.AllowedRoots, o.MaxPathReadBytes);
        });
        services.AddHostedService(sp => sp.GetRequiredService<OperationRunner>());
        services.AddSingleton(sp =>
        {
            var o = sp.GetRequiredService<IOptions<StitchingOptions>>().Value;
            return new TorchWorker(o.Device, o.TorchThreads > 0 ? o.TorchThreads : null);
        });
        services.AddSingleton<HostedServices>();

        services.AddGrpcHealthChecks(o => o.Services.Map("", _ => true))
            .AddCheck<StoreHealthCheck>("store")
            .AddCheck<CacheHealthCheck>("redis");

        var otel = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName: $"stitching-{hostName}"))
            // Spans: our services' sources, incoming gRPC (ASP.NET Core), outgoing gRPC between services (their
            // context propagates, so an experiment's stages nest under it across hosts) and Redis commands.
            .WithTracing(t => t.AddSource($"{StitchingTelemetry.Prefix}.*").AddAspNetCoreInstrumentation().AddGrpcClientInstrumentation()
                .AddRedisInstrumentation().ConfigureRedisInstrumentation((sp, redis) =>
                {
                    if (sp.GetRequiredService<IShardCache>() is RedisShardCache cache) redis.AddConnection(cache.Connection);
                }))
            .WithMetrics(m => m.AddMeter($"{StitchingTelemetry.Prefix}.*").AddAspNetCoreInstrumentation());
        if (!string.IsNullOrEmpty(builder.Configuration["OTEL_EXPORTER_OTLP_ENDPOINT"])) otel.UseOtlpExporter();
        return builder;
    }

    /// <summary>Registers one domain service: its name for health and server info, and its telemetry.</summary>
    public static WebApplicationBuilder AddStitchingService(this WebApplicationBuilder builder, string grpcServiceName, string telemetryName)
    {
        builder.Services.AddSingleton(new HostedServiceName(grpcServiceName));
        builder.Services.AddKeyedSingleton(telemetryName, new StitchingTelemetry(telemetryName));
        builder.Services.Configure<GrpcHealthChecksOptions>(o => o.Services.Map(grpcServiceName, _ => true));
        return builder;
    }

    public static WebApplication MapStitchingDefaults(this WebApplication app)
    {
        app.MapGrpcService<OperationsEndpoint>();
        app.MapGrpcService<ArtifactsEndpoint>();
        app.MapGrpcService<ServerInfoEndpoint>();
        app.MapGrpcHealthChecksService();
        if (app.Services.GetRequiredService<IOptions<StitchingOptions>>().Value.Reflection) app.MapGrpcReflectionService();
        return app;
    }
}

public sealed record HostedServiceName(string Name);
