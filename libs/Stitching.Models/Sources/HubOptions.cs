namespace Stitching.Models.Sources;

/// <summary>
/// Where the Hugging Face hub cache lives and how to reach the hub. <see cref="FromEnvironment"/> reads the
/// same variables as Python's huggingface_hub, so both share one cache; tests build the record directly.
/// </summary>
public sealed record HubOptions
{
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>The hub cache root (holds <c>models--ORG--NAME</c> folders).</summary>
    public required string CacheRoot { get; init; }

    /// <summary>Base URL of the hub; files are fetched from <c>{Endpoint}/{repo}/resolve/{revision}/{file}</c>.</summary>
    public string Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>Access token sent as <c>Authorization: Bearer</c>; null sends none.</summary>
    public string? Token { get; init; }

    /// <summary>When true nothing is fetched: only what the cache already holds resolves.</summary>
    public bool Offline { get; init; }

    /// <summary>
    /// Options from huggingface_hub's variables: HF_HUB_CACHE (or legacy HUGGINGFACE_HUB_CACHE), else
    /// HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub; HF_ENDPOINT;
    /// HF_TOKEN, else the token file at HF_TOKEN_PATH or HF_HOME/token; HF_HUB_OFFLINE (1/ON/YES/TRUE).
    /// </summary>
    /// <param name="getEnv">Variable lookup; the process environment when null.</param>
    public static HubOptions FromEnvironment(Func<string, string?>? getEnv = null)
    {
        getEnv ??= Environment.GetEnvironmentVariable;
        string? Get(string name) => getEnv(name) is { Length: > 0 } v ? ExpandHome(v.Trim()) : null;

        var home = Get("HF_HOME")
            ?? Path.Combine(Get("XDG_CACHE_HOME") ?? Path.Combine(UserHome(), ".cache"), "huggingface");
        return new HubOptions
        {
            CacheRoot = Get("HF_HUB_CACHE") ?? Get("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(home, "hub"),
            Endpoint = (Get("HF_ENDPOINT") ?? DefaultEndpoint).TrimEnd('/'),
            Token = Get("HF_TOKEN") ?? Get("HUGGING_FACE_HUB_TOKEN") ?? ReadTokenFile(Get("HF_TOKEN_PATH") ?? Path.Combine(home, "token")),
            Offline = IsTrue(getEnv("HF_HUB_OFFLINE")) || IsTrue(getEnv("TRANSFORMERS_OFFLINE")),
        };
    }

    private static bool IsTrue(string? value) =>
        value?.Trim().ToUpperInvariant() is "1" or "ON" or "YES" or "TRUE";

    private static string UserHome() => Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);

    private static string ExpandHome(string path) =>
        path == "~" ? UserHome() : path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(UserHome(), path[2..]) : path;

    private static string? ReadTokenFile(string path)
    {
        try
        {
            return File.Exists(path) && File.ReadAllText(path).Trim() is { Length: > 0 } token ? token : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }
}
