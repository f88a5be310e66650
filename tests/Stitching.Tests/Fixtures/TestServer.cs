using Grpc.Net.Client;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Core.Operations;
using Stitching.Server;

namespace Stitching.Tests.Fixtures;

/// <summary>
/// A real all-in-one server on a loopback port (Kestrel, HTTP/2), with a real redis-server unless told
/// otherwise, a temporary store, and the test-only job kinds registered.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly TempDir? _ownedStore;

    private TestServer(EmbeddedServer server, TempDir? ownedStore)
    {
        Server = server;
        _ownedStore = ownedStore;
        Channel = server.CreateChannel();
    }

    public EmbeddedServer Server { get; }
    public GrpcChannel Channel { get; }
    public LocalRedis? Redis => Server.LocalRedis;
    public string StoreRoot => Server.Services.GetRequiredService<Stitching.Core.Artifacts.ArtifactStore>().Root;

    public static async Task<TestServer> StartAsync(string? storeRoot = null, bool redis = true, bool testJobs = true, string? modelsRoot = null,
        IReadOnlyList<string>? allowedRoots = null, IReadOnlyDictionary<string, string>? settings = null,
        Action<Microsoft.AspNetCore.Builder.WebApplicationBuilder>? configure = null)
    {
        if (redis && LocalRedis.FindExecutable() is null)
            throw new InvalidOperationException("These tests need a real redis-server: apt-get install -y redis-server (the ./test script does it).");
        var owned = storeRoot is null ? new TempDir("stitching-store") : null;
        var server = await EmbeddedServer.StartAsync(new EmbeddedServerOptions
        {
            StoreRoot = storeRoot ?? owned!.Path,
            RedisUrl = null,
            StartLocalRedis = redis,
            AllowedRoots = allowedRoots ?? [],
            Configure = b =>
            {
                foreach (var (k, v) in settings ?? new Dictionary<string, string>()) b.Configuration[k] = v;
                if (modelsRoot is not null) b.Configuration["Stitching:ModelsRoot"] = modelsRoot;
                configure?.Invoke(b);
                if (!testJobs) return;
                b.Services.AddSingleton<IOperationHandler, CountingJob>();
                b.Services.AddSingleton<IOperationHandler, ResumableCountingJob>();
                b.Services.AddSingleton<IOperationHandler, CallsItsServerJob>();
            },
        });
        return new TestServer(server, owned);
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
        _ownedStore?.Dispose();
    }
}
