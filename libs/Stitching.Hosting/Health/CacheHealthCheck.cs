using Microsoft.Extensions.Diagnostics.HealthChecks;
using Stitching.Core.Caching;

namespace Stitching.Hosting.Health;

/// <summary>Redis reachable. A Redis problem is Degraded, never Unhealthy: reads fall back to the store.</summary>
public sealed class CacheHealthCheck(IShardCache cache) : IHealthCheck
{
    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var problem = await cache.ProbeAsync(cancellationToken);
        return problem is null
            ? HealthCheckResult.Healthy($"{cache.Describe()} answers")
            : HealthCheckResult.Degraded(problem);
    }
}
