using Stitching.Client;
using Grpc.Health.V1;
using Microsoft.Extensions.DependencyInjection;
using StackExchange.Redis;
using Stitching.Core.Caching;
using Stitching.Core.Tensors;
using Stitching.Contracts.Common.V1;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Integration;

/// <summary>The shard cache against a real redis-server: hits, misses, eviction, a slow and a killed Redis.</summary>
[Trait("Category", "Integration")]
public class RedisShardCacheTests : IAsyncLifetime
{
    private TestServer _server = null!;
    private ConnectionMultiplexer _probe = null!;
    public async Task InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        _probe = await ConnectionMultiplexer.ConnectAsync($"{_server.Redis!.Configuration},allowAdmin=true");
    }
    public async Task DisposeAsync()
    {
        _probe.Dispose();
        await _server.DisposeAsync();
    }

    private IShardCache Cache => _server.Server.Services.GetRequiredService<IShardCache>();

    private async Task<(ArtifactRef Ref, float[] Values)> UploadShardAsync(string id, int n = 3_000_000)
    {
        var values = Enumerable.Range(0, n).Select(i => (float)Math.Sin(i)).ToArray();
        var r = new ArtifactRef { Kind = "tensors", Id = id };
        await TensorTransfer.UploadAsync(new ArtifactsService.ArtifactsServiceClient(_server.Channel), r, [HostTensor.FromFloats("activations", values, n / 1000, 1000)], file: "shard-0.safetensors");
        return (r, values);
    }

    private async Task WaitForCachedAsync(string id)
    {
        var server = _probe.GetServer(_probe.GetEndPoints()[0]);
        for (var i = 0; i < 100; i++)
        {
            if (server.Keys(pattern: $"*{id}*:meta").Any()) return;
            await Task.Delay(50);
        }
        Assert.Fail($"the cache never stored {id}");
    }

    [Fact]
    public async Task Miss_reads_the_store_then_hits_come_from_redis_with_identical_bytes()
    {
        var (r, _) = await UploadShardAsync("hit");
        var (first, src1) = await Cache.GetFileAsync(r, "shard-0.safetensors");
        Assert.Equal(CacheSource.Store, src1);
        await WaitForCachedAsync("hit");
        var (second, src2) = await Cache.GetFileAsync(r, "shard-0.safetensors");
        Assert.Equal(CacheSource.Redis, src2);
        Assert.Equal(first, second);
        // 12 MB in 4 MiB values: the file was chunked.
        var chunks = _probe.GetServer(_probe.GetEndPoints()[0]).Keys(pattern: "*hit*").Count(k => !k.ToString().EndsWith(":meta"));
        Assert.Equal(3, chunks);
    }

    [Fact]
    public async Task Evicted_chunk_falls_back_to_the_store()
    {
        var (r, values) = await UploadShardAsync("evict");
        await Cache.GetFileAsync(r, "shard-0.safetensors");
        await WaitForCachedAsync("evict");
        var key = _probe.GetServer(_probe.GetEndPoints()[0]).Keys(pattern: "*evict*:1").Single();
        await _probe.GetDatabase().KeyDeleteAsync(key);
        var (bytes, src) = await Cache.GetFileAsync(r, "shard-0.safetensors");
        Assert.Equal(CacheSource.Store, src);
        var back = (await TensorTransfer.ReadAsync(new ArtifactsService.ArtifactsServiceClient(_server.Channel), r, file: "shard-0.safetensors")).Single();
        Assert.Equal(values, back.ToFloats());
        Assert.True(bytes.Length > values.Length * 4);
    }

    [Fact]
    public async Task Slow_redis_degrades_to_store_reads_without_errors()
    {
        var (r, _) = await UploadShardAsync("slow", 1000);
        await Cache.GetFileAsync(r, "shard-0.safetensors");
        await WaitForCachedAsync("slow");
        await _probe.GetServer(_probe.GetEndPoints()[0]).ExecuteAsync("CLIENT", "PAUSE", "3000", "ALL");
        var (_, src) = await Cache.GetFileAsync(r, "shard-0.safetensors");
        Assert.Equal(CacheSource.Store, src);
    }

    [Fact]
    public async Task Killing_redis_mid_test_keeps_reads_working_and_health_serving_but_degraded()
    {
        var (r, values) = await UploadShardAsync("kill");
        var client = new ArtifactsService.ArtifactsServiceClient(_server.Channel);
        Assert.Equal(values, (await TensorTransfer.ReadAsync(client, r, file: "shard-0.safetensors")).Single().ToFloats());
        await WaitForCachedAsync("kill");

        _server.Redis!.Kill();
        Assert.False(_server.Redis.IsRunning);

        for (var i = 0; i < 3; i++)
            Assert.Equal(values, (await TensorTransfer.ReadAsync(client, r, file: "shard-0.safetensors")).Single().ToFloats());
        var (_, src) = await Cache.GetFileAsync(r, "shard-0.safetensors");
        Assert.Equal(CacheSource.Store, src);

        // New artifacts still store and read back while Redis is gone.
        var (r2, v2) = await UploadShardAsync("after-kill", 2000);
        Assert.Equal(v2, (await TensorTransfer.ReadAsync(client, r2, file: "shard-0.safetensors")).Single().ToFloats());

        var health = await new Health.HealthClient(_server.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        var info = await new ServerInfoService.ServerInfoServiceClient(_server.Channel).GetServerInfoAsync(new GetServerInfoRequest());
        Assert.Equal(CheckStatus.Degraded, info.Checks.Single(c => c.Name == "redis").Status);
        Assert.Equal(CheckStatus.Healthy, info.Checks.Single(c => c.Name == "store").Status);
    }
}
