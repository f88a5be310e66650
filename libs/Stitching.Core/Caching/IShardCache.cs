using Stitching.Contracts.Common.V1;

namespace Stitching.Core.Caching;

/// <summary>Where a read was served from; exported as a metric and useful in tests.</summary>
public enum CacheSource { Redis, Store }

/// <summary>
/// Read-through cache of whole artifact files (activation shards above all). The store is the only
/// source of truth: the cache can lose anything at any time and callers never notice but in speed.
/// </summary>
public interface IShardCache
{
    /// <summary>The bytes of one artifact file, from the cache when it holds a valid copy, else from the store.</summary>
    Task<(byte[] Bytes, CacheSource Source)> GetFileAsync(ArtifactRef artifact, string file, CancellationToken ct = default);

    /// <summary>Short description for health and server info, e.g. "redis 127.0.0.1:6379" or "none".</summary>
    string Describe();

    /// <summary>Probes the cache; null when healthy, else why not.</summary>
    Task<string?> ProbeAsync(CancellationToken ct = default);
}
