using Grpc.Net.Client;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Stitching.Hosting;

namespace Stitching.Server;

public sealed record EmbeddedServerOptions
{
    /// <summary>Artifact store root; null uses the default (STITCHING_STORE or ~/.local/share/stitching/store).</summary>
    public string? StoreRoot { get; init; }
    /// <summary>Redis to use; null starts a private redis-server when one is installed (unless <see cref="StartLocalRedis"/> is false).</summary>
    public string? RedisUrl { get; init; }
    public bool StartLocalRedis { get; init; } = true;
    /// <summary>Address to bind; port 0 picks a free port.</summary>
    public string Url { get; init; } = "http://127.0.0.1:0";
    /// <summary>Lowest level logged, to standard error only (stdout stays the command's own output); None logs nothing.</summary>
    public LogLevel MinimumLogLevel { get; init; } = LogLevel.Warning;
    /// <summary>Folders whose files clients may name by path (Stitching:AllowedRoots); empty = none.</summary>
    public IReadOnlyList<string> AllowedRoots { get; init; } = [];
    /// <summary>Extra wiring (tests register their own job kinds here).</summary>
    public Action<WebApplicationBuilder>? Configure { get; init; }
}

/// <summary>
/// The all-in-one host started inside the current process, listening on loopback. The CLI uses it
/// when no --server is given and still talks gRPC to it, so the embedded path is the real path.
/// </summary>
public sealed class EmbeddedServer : IAsyncDisposable
{
    private EmbeddedServer(WebApplication app, string address, LocalRedis? redis, string? redisUrl, string? redisNote)
    {
        App = app;
        Address = address;
        LocalRedis = redis;
        RedisUrl = redisUrl;
        RedisNote = redisNote;
    }

    public WebApplication App { get; }
    public string Address { get; }
    public LocalRedis? LocalRedis { get; }
    public string? RedisUrl { get; }
    /// <summary>Why the server runs without Redis, when it does.</summary>
    public string? RedisNote { get; }
    public IServiceProvider Services => App.Services;

    public static async Task<EmbeddedServer> StartAsync(EmbeddedServerOptions options, CancellationToken ct = default)
    {
        LocalRedis? redis = null;
        string? note = null;
        var redisUrl = options.RedisUrl ?? Environment.GetEnvironmentVariable("REDIS_URL");
        if (string.IsNullOrEmpty(redisUrl) && options.StartLocalRedis)
        {
            if (LocalRedis.FindExecutable() is null)
                note = "redis-server is not installed, so this server runs with the artifact store alone (apt-get install -y redis-server adds the cache)";
            else
            {
                redis = await LocalRedis.StartAsync();
                redisUrl = redis.Configuration;
            }
        }
        else if (string.IsNullOrEmpty(redisUrl)) note = "no Redis configured; running with the artifact store alone";

        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        if (options.MinimumLogLevel != LogLevel.None)
            builder.Logging.AddConsole(o => o.LogToStandardErrorThreshold = LogLevel.Trace);
        builder.Logging.SetMinimumLevel(options.MinimumLogLevel);
        builder.Configuration["Stitching:RedisUrl"] = redisUrl ?? "";
        if (options.StoreRoot is not null) builder.Configuration["Stitching:StoreRoot"] = options.StoreRoot;
        for (var i = 0; i < options.AllowedRoots.Count; i++) builder.Configuration[$"Stitching:AllowedRoots:{i}"] = options.AllowedRoots[i];
        builder.WebHost.UseUrls(options.Url);
        builder.AddAllServices();
        options.Configure?.Invoke(builder);
        var app = builder.Build();
        app.MapAllServices();
        try
        {
            await app.StartAsync(ct);
        }
        catch
        {
            redis?.Dispose();
            throw;
        }
        return new EmbeddedServer(app, app.Urls.First(), redis, redisUrl, note);
    }

    public GrpcChannel CreateChannel() => GrpcChannel.ForAddress(Address, new GrpcChannelOptions
    {
        MaxReceiveMessageSize = 64 << 20,
        MaxSendMessageSize = 64 << 20,
        HttpHandler = Hosting.Clients.ServiceChannels.NewHandler(),
    });

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        LocalRedis?.Dispose();
    }
}
