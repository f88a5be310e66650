using System.Diagnostics;
using Grpc.Core;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using Stitching.Core.Caching;
using Stitching.Core.Compute;
using Stitching.Contracts.Common.V1;
using HealthCheckResult = Stitching.Contracts.Common.V1.HealthCheckResult;

namespace Stitching.Hosting.Endpoints;

/// <summary>Server info: hosted services, health check details, store, cache and torch runtime.</summary>
public sealed class ServerInfoEndpoint(HealthCheckService health, HostedServices hosted, IShardCache cache, IOptions<StitchingOptions> options) : ServerInfoService.ServerInfoServiceBase
{
    private static readonly DateTime Started = Process.GetCurrentProcess().StartTime.ToUniversalTime();

    public override async Task<ServerInfo> GetServerInfo(GetServerInfoRequest request, ServerCallContext context)
    {
        var report = await health.CheckHealthAsync(context.CancellationToken);
        var info = new ServerInfo
        {
            Version = typeof(ServerInfoEndpoint).Assembly.GetName().Version?.ToString() ?? "",
            StoreRoot = Path.GetFullPath(options.Value.StoreRoot),
            Redis = cache is RedisShardCache ? cache.Describe() : "",
            TorchVersion = TorchInfo.Version,
            Device = options.Value.Device,
            TorchThreads = TorchInfo.Threads,
            UptimeSeconds = (DateTime.UtcNow - Started).TotalSeconds,
        };
        info.Services.AddRange(hosted.Names);
        foreach (var (name, entry) in report.Entries)
            info.Checks.Add(new HealthCheckResult
            {
                Name = name,
                Status = entry.Status switch
                {
                    HealthStatus.Healthy => CheckStatus.Healthy,
                    HealthStatus.Degraded => CheckStatus.Degraded,
                    _ => CheckStatus.Unhealthy,
                },
                Description = entry.Description ?? entry.Exception?.Message ?? "",
                DurationMs = entry.Duration.TotalMilliseconds,
            });
        return info;
    }
}
