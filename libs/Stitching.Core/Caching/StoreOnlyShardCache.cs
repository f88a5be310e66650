using Stitching.Core.Artifacts;
using Stitching.Contracts.Common.V1;

namespace Stitching.Core.Caching;

/// <summary>No cache configured: every read goes to the artifact store.</summary>
public sealed class StoreOnlyShardCache(ArtifactStore store) : IShardCache
{
    public Task<(byte[] Bytes, CacheSource Source)> GetFileAsync(ArtifactRef artifact, string file, CancellationToken ct = default) =>
        Task.FromResult((store.ReadAllBytes(artifact, file), CacheSource.Store));

    public string Describe() => "none (store only)";

    public Task<string?> ProbeAsync(CancellationToken ct = default) => Task.FromResult<string?>("no Redis configured; reads go to the artifact store");
}
