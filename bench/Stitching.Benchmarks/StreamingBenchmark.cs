using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Caching;
using Stitching.Server;

namespace Stitching.Benchmarks;

/// <summary>
/// Reads over gRPC on loopback (ReadActivations of a whole ActivationSet, ReadFile of its shard files) in GB/s,
/// against a raw TCP socket moving the same bytes over the same loopback in the same run; and the Redis hit path
/// (RedisShardCache.GetFileAsync of cached shards) against redis-benchmark's GET of values of the cache's chunk size.
/// </summary>
public static class StreamingBenchmark
{
    public static async Task RunAsync(Pipeline pipeline, long tokens, int repeat, List<Figure> figures)
    {
        var extract = await pipeline.ExtractAsync(tokens);
        var set = extract.ActivationSets[0];
        var artifacts = new ArtifactsService.ArtifactsServiceClient(pipeline.Channel);
        var manifest = await artifacts.GetArtifactAsync(new GetArtifactRequest { Ref = set });
        var shards = manifest.Files.Where(f => f.Name != ArtifactStore.ManifestFile && f.Name.EndsWith(".safetensors", StringComparison.Ordinal)).ToList();
        Console.WriteLine($"ActivationSet {set.Id}: {extract.Tokens} tokens x {Pipeline.Hooks.Length} hooks of {Pipeline.Model}, {shards.Count} shard files, {shards.Sum(f => f.SizeBytes) / 1e6:F0} MB");

        var activations = new ActivationsService.ActivationsServiceClient(pipeline.Channel);
        var (readSeconds, readBytes) = await BestAsync(repeat, async () =>
        {
            long bytes = 0;
            using var call = activations.ReadActivations(new ReadActivationsRequest { ActivationSet = set });
            await foreach (var chunk in call.ResponseStream.ReadAllAsync())
                bytes += chunk.PartCase == TensorChunk.PartOneofCase.Data ? chunk.Data.Length : chunk.Header.CalculateSize();
            return bytes;
        });
        var (fileSeconds, fileBytes) = await BestAsync(repeat, async () =>
        {
            long bytes = 0;
            foreach (var f in shards)
            {
                using var call = artifacts.ReadFile(new ReadFileRequest { Ref = set, File = f.Name });
                await foreach (var chunk in call.ResponseStream.ReadAllAsync()) bytes += chunk.Data.Length;
            }
            return bytes;
        });
        var (tcpSeconds, _) = await BestAsync(repeat, () => RawLoopbackAsync(readBytes));
        var tcp = readBytes / tcpSeconds / 1e9;
        Console.WriteLine($"  ReadActivations: {readBytes / 1e6:F0} MB in {readSeconds * 1e3:F0} ms = {readBytes / readSeconds / 1e9:F2} GB/s (best of {repeat})");
        Console.WriteLine($"  ReadFile (every shard file): {fileBytes / 1e6:F0} MB in {fileSeconds * 1e3:F0} ms = {fileBytes / fileSeconds / 1e9:F2} GB/s");
        Console.WriteLine($"  raw TCP on loopback, same bytes: {tcp:F2} GB/s");
        figures.Add(new Figure("stream-read-activations", readBytes / readSeconds / 1e9, tcp, "GB/s", "ours >= 1 GB/s", "gRPC ReadActivations vs a raw loopback socket"));
        figures.Add(new Figure("stream-read-file", fileBytes / fileSeconds / 1e9, tcp, "GB/s", "ours >= 1 GB/s", "gRPC ReadFile of the shard files vs a raw loopback socket"));
        await RedisAsync(pipeline, set, shards, repeat, figures);
    }

    private static async Task RedisAsync(Pipeline pipeline, ArtifactRef set, List<ArtifactFile> shards, int repeat, List<Figure> figures)
    {
        if (pipeline.Server.LocalRedis is not { } redis) { Console.WriteLine("  Redis hit path not measured: no redis-server (apt-get install -y redis-server)"); return; }
        var options = new RedisCacheOptions(redis.Configuration);
        using var cache = new RedisShardCache(new ArtifactStore(pipeline.Store), options, NullLogger<RedisShardCache>.Instance);
        // The first reads miss and populate (fire and forget); wait until every shard is a hit.
        for (var attempt = 0; attempt < 50; attempt++)
        {
            var sources = new List<CacheSource>();
            foreach (var f in shards) sources.Add((await cache.GetFileAsync(set, f.Name)).Source);
            if (sources.All(s => s == CacheSource.Redis)) break;
            await Task.Delay(200);
        }
        var (seconds, bytes) = await BestAsync(repeat, async () =>
        {
            long total = 0;
            foreach (var f in shards)
            {
                var (data, source) = await cache.GetFileAsync(set, f.Name);
                if (source != CacheSource.Redis) throw new InvalidOperationException($"{f.Name} was not served from Redis");
                total += data.Length;
            }
            return total;
        });
        var ours = bytes / seconds / 1e6;
        var baseline = RedisBenchmarkGet(redis.Port, options.ChunkBytes, Math.Max(20, (int)(bytes / options.ChunkBytes)));
        Console.WriteLine($"  Redis hit path (RedisShardCache.GetFileAsync, {options.ChunkBytes >> 20} MiB chunks, checksum checked): {ours:F0} MB/s");
        if (baseline is null) { Console.WriteLine("  redis-benchmark not run (apt-get install -y redis-tools)"); return; }
        Console.WriteLine($"  redis-benchmark GET of {options.ChunkBytes >> 20} MiB values, 1 client: {baseline:F0} MB/s");
        figures.Add(new Figure("redis-hit", ours, baseline.Value, "MB/s", ">= 0.50", "our cache's hit path vs redis-benchmark GET, same value size"));
    }

    /// <summary>redis-benchmark's GET throughput in MB/s for values of <paramref name="valueBytes"/>, one client, no pipelining.</summary>
    private static double? RedisBenchmarkGet(int port, int valueBytes, int requests)
    {
        const string exe = "/usr/bin/redis-benchmark";
        if (!File.Exists(exe)) return null;
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-h", "127.0.0.1", "-p", $"{port}", "-t", "set,get", "-d", $"{valueBytes}", "-n", $"{requests}", "-c", "1", "--csv" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        // --csv: a header line, then "SET",... and "GET","<requests per second>",... (SET first, so GET reads a real value)
        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("\"GET\"", StringComparison.Ordinal));
        if (line is null) return null;
        var rps = double.Parse(line.Split(',')[1].Trim('"'), System.Globalization.CultureInfo.InvariantCulture);
        return rps * valueBytes / 1e6;
    }

    /// <summary>Moves <paramref name="bytes"/> through a loopback TCP connection in 1 MiB writes; returns the count read.</summary>
    private static async Task<long> RawLoopbackAsync(long bytes)
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        var send = Task.Run(async () =>
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            var stream = client.GetStream();
            var block = new byte[1 << 20];
            for (long sent = 0; sent < bytes; sent += block.Length)
                await stream.WriteAsync(block.AsMemory(0, (int)Math.Min(block.Length, bytes - sent)));
        });
        using var server = await listener.AcceptTcpClientAsync();
        var input = server.GetStream();
        var buffer = new byte[1 << 20];
        long read = 0;
        int n;
        while ((n = await input.ReadAsync(buffer)) > 0) read += n;
        await send;
        return read;
    }

    private static async Task<(double Seconds, long Bytes)> BestAsync(int repeat, Func<Task<long>> work)
    {
        var best = double.MaxValue;
        long bytes = 0;
        for (var i = 0; i < Math.Max(1, repeat); i++)
        {
            var sw = Stopwatch.StartNew();
            bytes = await work();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return (best, bytes);
    }
}
