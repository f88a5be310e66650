using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Corpora.Brown;
using Stitching.Hosting;
using Stitching.Server;
using Stitching.Zoo.Family;

namespace Stitching.Benchmarks;

/// <summary>
/// The real services for the streaming, Redis and memory figures: the all-in-one server embedded in this process
/// over a temporary store (and its own redis-server), the CI zoo family (built once into the default store's
/// models folder, as `./stitch paper --family ci` does) and extraction and training through their gRPC APIs.
/// </summary>
public sealed class Pipeline : IAsyncDisposable
{
    /// <summary>The model extracted from: the CI family's largest (d 64, 2 layers), all three residual streams.</summary>
    public const string Model = "brown-ci-l";
    public static readonly string[] Hooks = ["blocks.0.hook_resid_pre", "blocks.1.hook_resid_pre", "blocks.1.hook_resid_post"];
    public const int Context = 64;

    private Pipeline(EmbeddedServer server, string store)
    {
        Server = server;
        Store = store;
        Channel = server.CreateChannel();
    }

    public EmbeddedServer Server { get; }
    public string Store { get; }
    public GrpcChannel Channel { get; }

    /// <summary>Builds the CI family when it is missing; returns its models folder.</summary>
    public static string EnsureFamily()
    {
        var paths = ZooPaths.ForStore(StitchingOptions.DefaultStoreRoot(), Environment.GetEnvironmentVariable("Stitching__ModelsRoot"));
        var spec = FamilySpec.Ci;
        if (!File.Exists(Path.Combine(paths.ModelsRoot, spec.ModelName(spec.Sizes[^1]), "config.json")))
            Console.WriteLine($"building the CI zoo family into {paths.ModelsRoot} (once)...");
        new ZooBuilder(spec, paths, BrownCorpus.Shared).Build(null, CancellationToken.None);
        return paths.ModelsRoot;
    }

    public static async Task<Pipeline> StartAsync(string modelsRoot)
    {
        var store = Path.Combine(Path.GetTempPath(), $"stitching-bench-{Guid.NewGuid():N}");
        var server = await EmbeddedServer.StartAsync(new EmbeddedServerOptions
        {
            StoreRoot = store, MinimumLogLevel = LogLevel.None,
            Configure = b => b.Configuration["Stitching:ModelsRoot"] = modelsRoot,
        });
        return new Pipeline(server, store);
    }

    /// <summary>Extracts the first <paramref name="tokens"/> tokens of brown:train at <see cref="Hooks"/> of <see cref="Model"/>.</summary>
    public async Task<ExtractResult> ExtractAsync(long tokens)
    {
        var request = new ExtractRequest
        {
            Corpus = new CorpusSpec { Named = "brown:train" },
            Tokens = new TokenSetSpec { ContextLength = Context, MaxTokens = tokens, BosPolicy = BosPolicy.Never },
            Models = { new ModelHooks { Model = new ModelSpec { Model = Model }, Hooks = { Hooks } } },
        };
        var op = await new ActivationsService.ActivationsServiceClient(Channel).ExtractAsync(request);
        return (await WaitAsync(op.Id)).Result.Unpack<ExtractResult>();
    }

    /// <summary>Trains a TopK SAE (width 8 d, k 16, one pass, batch 4096) on one hook of a set.</summary>
    public async Task<TrainResult> TrainAsync(ArtifactRef set, string hook, long tokens)
    {
        var request = new TrainRequest
        {
            ActivationSet = set, Hook = hook, Sae = new SaeSpec { Architecture = "topk", DSae = 512, K = 16 }, Tokens = tokens, BatchSize = 4096,
        };
        var op = await new SaeService.SaeServiceClient(Channel).TrainAsync(request);
        return (await WaitAsync(op.Id)).Result.Unpack<TrainResult>();
    }

    private async Task<Operation> WaitAsync(string id)
    {
        using var call = new OperationsService.OperationsServiceClient(Channel).WatchOperation(new WatchOperationRequest { Id = id });
        Operation? last = null;
        await foreach (var op in call.ResponseStream.ReadAllAsync()) last = op;
        return last is { State: OperationState.Succeeded } ? last
            : throw new InvalidOperationException($"operation {id} ended {last?.State}: {last?.Error?.Message}");
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        await Server.DisposeAsync();
        try { Directory.Delete(Store, recursive: true); } catch (IOException) { }
    }
}
