using Microsoft.Extensions.Diagnostics.HealthChecks;
using Stitching.Core.Artifacts;

namespace Stitching.Hosting.Health;

/// <summary>The artifact store is writable: a probe file is written, read back and removed.</summary>
public sealed class StoreHealthCheck(ArtifactStore store) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var probe = Path.Combine(store.Root, ".staging", $"health-{Guid.NewGuid():N}");
        try
        {
            File.WriteAllText(probe, "ok");
            var ok = File.ReadAllText(probe) == "ok";
            File.Delete(probe);
            return Task.FromResult(ok
                ? HealthCheckResult.Healthy($"store at {store.Root} is writable")
                : HealthCheckResult.Unhealthy($"store at {store.Root} did not read back what was written"));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return Task.FromResult(HealthCheckResult.Unhealthy($"store at {store.Root} is not writable: {e.Message}"));
        }
    }
}
