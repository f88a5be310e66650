namespace Stitching.Hosting;

/// <summary>
/// Settings shared by every host, bound from the "Stitching" configuration section (environment:
/// Stitching__StoreRoot=...). REDIS_URL and STITCHING_STORE are honoured as shorthands.
/// </summary>
public sealed class StitchingOptions
{
    public const string Section = "Stitching";

    /// <summary>Root folder of the durable artifact store.</summary>
    public string StoreRoot { get; set; } = DefaultStoreRoot();

    /// <summary>StackExchange.Redis configuration string ("host:port,..."); empty runs with the store alone.</summary>
    public string? RedisUrl { get; set; }

    /// <summary>Largest single gRPC message accepted or sent; big tensors stream in chunks below this.</summary>
    public int MaxMessageBytes { get; set; } = 16 << 20;

    /// <summary>Largest single tensor an upload may carry (bytes).</summary>
    public long MaxUploadTensorBytes { get; set; } = int.MaxValue;

    /// <summary>Operations running at once in this host; more wait their turn (PENDING).</summary>
    public int MaxConcurrentOperations { get; set; } = 2;

    /// <summary>Folder of model checkpoints served by name (one sub-folder per model); default {StoreRoot}/models.</summary>
    public string? ModelsRoot { get; set; }

    /// <summary>Models kept loaded at once per host; the least recently used is unloaded beyond this.</summary>
    public int MaxLoadedModels { get; set; } = 4;

    public string ModelsRootOrDefault() => string.IsNullOrEmpty(ModelsRoot) ? Path.Combine(StoreRoot, "models") : ModelsRoot;

    /// <summary>
    /// Address of the activations service for services that ask it for forward passes (stitch, eval),
    /// e.g. http://activations:8080 in Kubernetes; empty means this host itself (the all-in-one default).
    /// </summary>
    public string? ActivationsAddress { get; set; }

    /// <summary>Addresses of the stitch, SAE and eval services for the experiments that call them; empty means this host.</summary>
    public string? StitchAddress { get; set; }
    public string? SaeAddress { get; set; }
    public string? EvalAddress { get; set; }

    /// <summary>Experiments orchestrating at once in this host (they hold no compute slot; their stages do); more wait (PENDING).</summary>
    public int MaxConcurrentExperiments { get; set; } = 4;

    /// <summary>Torch device for compute ("cpu", "cuda", "cuda:1").</summary>
    public string Device { get; set; } = "cpu";

    /// <summary>Torch intra-op threads; 0 keeps libtorch's default.</summary>
    public int TorchThreads { get; set; }

    /// <summary>
    /// Folders whose files clients may name by path (corpus files, model folders, SAE import and export).
    /// Empty (the default) turns server-side paths off: clients send their data over gRPC instead.
    /// </summary>
    public string[] AllowedRoots { get; set; } = [];

    /// <summary>Largest file a client-named path may make the server read (bytes).</summary>
    public long MaxPathReadBytes { get; set; } = 4L << 30;

    /// <summary>Tokens one Forward call may carry (batch x tokens); more is RESOURCE_EXHAUSTED.</summary>
    public long MaxForwardTokens { get; set; } = 1 << 16;

    /// <summary>New tokens one Generate call may ask for.</summary>
    public int MaxGenerateTokens { get; set; } = 1024;

    /// <summary>Operations waiting to run (PENDING) beyond which a new one is RESOURCE_EXHAUSTED.</summary>
    public int MaxPendingOperations { get; set; } = 64;

    /// <summary>Bearer tokens; when any is set every RPC but health needs "authorization: Bearer TOKEN". STITCHING_AUTH_TOKENS (comma-separated) adds to them.</summary>
    public AuthOptions Auth { get; set; } = new();

    /// <summary>TLS for https:// endpoints: PEM certificate (and key) paths.</summary>
    public TlsOptions Tls { get; set; } = new();

    /// <summary>gRPC server reflection (grpcurl and friends); on by default.</summary>
    public bool Reflection { get; set; } = true;

    public static string DefaultStoreRoot()
    {
        var env = Environment.GetEnvironmentVariable("STITCHING_STORE");
        if (!string.IsNullOrEmpty(env)) return env;
        var data = Environment.GetEnvironmentVariable("XDG_DATA_HOME");
        if (string.IsNullOrEmpty(data)) data = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".local", "share");
        return Path.Combine(data, "stitching", "store");
    }
}

public sealed class TlsOptions
{
    public string? CertificatePath { get; set; }
    public string? KeyPath { get; set; }
}

public sealed class AuthOptions
{
    public string[] Tokens { get; set; } = [];
}
