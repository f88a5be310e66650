using System.Diagnostics.Metrics;
using System.IO.Hashing;
using Microsoft.Extensions.Logging;
using StackExchange.Redis;
using Stitching.Core.Artifacts;
using Stitching.Contracts.Common.V1;

namespace Stitching.Core.Caching;

/// <summary>
/// Redis in front of the artifact store. A file is cached as chunk values plus a meta hash written
/// last (length, chunk count, xxHash64 of the content); the key includes the file's sha256, so a
/// cached copy can never stand for different content. Any Redis trouble (down, slow, evicted chunks,
/// mismatching hash) makes the read fall back to the store with a warning; nothing here throws for it.
/// </summary>
public sealed class RedisShardCache : IShardCache, IDisposable
{
    private readonly Meter _meter = new("Stitching.Cache");
    private readonly Counter<long> _reads, _readBytes;
    private long _hits, _misses;
    private readonly ArtifactStore _store;
    private readonly ILogger _log;
    private readonly ConnectionMultiplexer _mux;
    private readonly RedisCacheOptions _options;
    private long _lastWarningTicks;

    public RedisShardCache(ArtifactStore store, RedisCacheOptions options, ILogger<RedisShardCache> log)
    {
        _store = store;
        _options = options;
        _log = log;
        var config = ConfigurationOptions.Parse(options.Configuration);
        config.AbortOnConnectFail = false; // start even when Redis is down; reconnect in the background
        config.ConnectTimeout = options.TimeoutMs;
        config.SyncTimeout = options.TimeoutMs;
        config.AsyncTimeout = options.TimeoutMs;
        config.ConnectRetry = 1;
        _mux = ConnectionMultiplexer.Connect(config);
        _reads = _meter.CreateCounter<long>("stitching.cache.reads", description: "artifact file reads by source (redis hit or store)");
        _readBytes = _meter.CreateCounter<long>("stitching.cache.read_bytes", unit: "By", description: "artifact file bytes read, by source (redis hit or store)");
        _meter.CreateObservableGauge("stitching.cache.hit_ratio", () =>
        {
            var (hits, misses) = (Interlocked.Read(ref _hits), Interlocked.Read(ref _misses));
            return hits + misses == 0 ? [] : new[] { new Measurement<double>((double)hits / (hits + misses)) };
        }, description: "fraction of this process's cached file reads served by Redis: hits / (hits + misses)");
    }

    /// <summary>The Redis connection (for tracing its commands).</summary>
    public IConnectionMultiplexer Connection => _mux;

    public string Describe() => $"redis {_options.Configuration}";

    public async Task<string?> ProbeAsync(CancellationToken ct = default)
    {
        try
        {
            if (!_mux.IsConnected) return $"Redis at {_options.Configuration} is not connected; reads fall back to the artifact store";
            var latency = await _mux.GetDatabase().PingAsync();
            return null;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            return $"Redis at {_options.Configuration} did not answer ({e.GetType().Name}); reads fall back to the artifact store";
        }
    }

    public async Task<(byte[] Bytes, CacheSource Source)> GetFileAsync(ArtifactRef artifact, string file, CancellationToken ct = default)
    {
        var entry = _store.FileEntry(artifact, file);
        var key = $"{_options.KeyPrefix}{artifact.Kind}/{artifact.Id}/{file}@{entry.Sha256[..16]}";
        var cached = await TryReadAsync(key, entry.SizeBytes);
        if (cached is not null)
        {
            Count(ref _hits, "redis", cached.Length);
            return (cached, CacheSource.Redis);
        }
        ct.ThrowIfCancellationRequested();
        var bytes = _store.ReadAllBytes(artifact, file);
        Count(ref _misses, "store", bytes.Length);
        if (bytes.Length <= _options.MaxFileBytes) Populate(key, bytes);
        return (bytes, CacheSource.Store);
    }

    private void Count(ref long outcome, string source, long bytes)
    {
        Interlocked.Increment(ref outcome);
        var tag = new KeyValuePair<string, object?>("source", source);
        _reads.Add(1, tag);
        _readBytes.Add(bytes, tag);
    }

    private async Task<byte[]?> TryReadAsync(string key, long expectedLength)
    {
        if (!_mux.IsConnected) { Warn("Redis is not connected; serving from the artifact store"); return null; }
        try
        {
            var db = _mux.GetDatabase();
            var meta = await db.HashGetAllAsync(key + ":meta");
            if (meta.Length == 0) return null;
            var fields = meta.ToDictionary(e => (string)e.Name!, e => (long)e.Value);
            if (!fields.TryGetValue("len", out var len) || !fields.TryGetValue("chunks", out var chunks) || !fields.TryGetValue("xxh", out var xxh) || len != expectedLength)
                return null;
            var keys = Enumerable.Range(0, (int)chunks).Select(i => (RedisKey)$"{key}:{i}").ToArray();
            var values = await db.StringGetAsync(keys);
            var bytes = new byte[len];
            var offset = 0;
            foreach (var v in values)
            {
                if (v.IsNull) { Warn($"Redis evicted part of {key}; serving from the artifact store"); return null; }
                var chunk = (byte[])v!;
                if (offset + chunk.Length > len) return null;
                chunk.CopyTo(bytes, offset);
                offset += chunk.Length;
            }
            if (offset != len || (long)XxHash64.HashToUInt64(bytes) != xxh)
            {
                Warn($"Redis copy of {key} does not match its checksum; serving from the artifact store");
                return null;
            }
            return bytes;
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Warn($"Redis read failed ({e.GetType().Name}: {e.Message}); serving from the artifact store");
            return null;
        }
    }

    /// <summary>Best-effort, fire-and-forget: chunks first, meta last, so a visible meta implies complete chunks.</summary>
    private void Populate(string key, byte[] bytes)
    {
        if (!_mux.IsConnected) return;
        try
        {
            var db = _mux.GetDatabase();
            var chunk = _options.ChunkBytes;
            var n = Math.Max(1, (bytes.Length + chunk - 1) / chunk);
            for (var i = 0; i < n; i++)
            {
                var slice = bytes.AsMemory(i * chunk, Math.Min(chunk, bytes.Length - i * chunk));
                db.StringSet($"{key}:{i}", slice, _options.Ttl is { } t ? new Expiration(t) : Expiration.Default, flags: CommandFlags.FireAndForget);
            }
            var meta = new HashEntry[] { new("len", bytes.Length), new("chunks", n), new("xxh", (long)XxHash64.HashToUInt64(bytes)) };
            db.HashSet(key + ":meta", meta, CommandFlags.FireAndForget);
            if (_options.Ttl is { } ttl) db.KeyExpire(key + ":meta", ttl, CommandFlags.FireAndForget);
        }
        catch (Exception e) when (e is RedisException or TimeoutException)
        {
            Warn($"Redis write failed ({e.GetType().Name}); the store still has everything");
        }
    }

    private void Warn(string message)
    {
        // At most one warning every 30 s: a dead Redis must not flood the log.
        var now = Environment.TickCount64;
        var last = Interlocked.Read(ref _lastWarningTicks);
        if (now - last < 30_000 && last != 0) return;
        Interlocked.Exchange(ref _lastWarningTicks, now);
        _log.LogWarning("{Message}", message);
    }

    public void Dispose()
    {
        _meter.Dispose();
        _mux.Dispose();
    }
}

public sealed record RedisCacheOptions(string Configuration)
{
    public string KeyPrefix { get; init; } = "stitching:v1:";
    /// <summary>Chunk size for values; Redis allows 512 MB per value, but small values keep latency even.</summary>
    public int ChunkBytes { get; init; } = 4 << 20;
    /// <summary>Files above this size are read from the store only.</summary>
    public long MaxFileBytes { get; init; } = 512L << 20;
    public int TimeoutMs { get; init; } = 1000;
    public TimeSpan? Ttl { get; init; } = TimeSpan.FromDays(7);
}
