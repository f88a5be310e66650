using System.Text;
using Stitching.Core.Errors;
using Stitching.Models.Sources;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Models;

/// <summary>
/// Hub downloads against <see cref="FakeHub"/>, a real loopback HTTP server answering with huggingface.co's
/// headers, into a temporary cache that must match huggingface_hub's layout to the byte.
/// </summary>
[Trait("Category", "Integration")]
public sealed class HubTests : IAsyncLifetime
{
    private const string Config = """{"model_type": "gpt2", "n_layer": 1}""";
    private readonly TempDir _cache = new("stitching-hub");
    private FakeHub _hub = null!;
    private readonly byte[] _weights = RandomBytes(300_000, seed: 1);

    public async Task InitializeAsync()
    {
        _hub = await FakeHub.StartAsync();
        _hub.AddText("config.json", Config);
        _hub.AddText("tokenizer.json", """{"model": {"type": "BPE"}}""");
        _hub.AddText("tokenizer_config.json", """{"bos_token": "<|endoftext|>"}""");
    }

    public async Task DisposeAsync()
    {
        await _hub.DisposeAsync();
        _cache.Dispose();
    }

    private HubOptions Options(string? token = null, bool offline = false) =>
        new() { CacheRoot = _cache.Path, Endpoint = _hub.Endpoint, Token = token, Offline = offline };

    private string RepoFolder => Path.Combine(_cache.Path, "models--acme--tiny-model");

    private Task<string> ResolveAsync(HubOptions? options = null, bool allowDownload = true, string? reference = null, Action<HubDownloadProgress>? progress = null) =>
        new ModelResolver(options ?? Options()).ResolveAsync(reference ?? _hub.Repo, allowDownload, progress);

    [Fact]
    public async Task Download_writes_the_huggingface_hub_layout()
    {
        var weights = _hub.Add("model.safetensors", _weights, lfs: true);
        var progress = new List<HubDownloadProgress>();

        var folder = await ResolveAsync(progress: progress.Add);

        Assert.Equal(Path.Combine(RepoFolder, "snapshots", FakeHub.Commit), folder);
        Assert.Equal(FakeHub.Commit, File.ReadAllText(Path.Combine(RepoFolder, "refs", "main")));
        Assert.Equal($"../../blobs/{weights.Etag}", new FileInfo(Path.Combine(folder, "model.safetensors")).LinkTarget);
        var configEtag = FakeHub.GitBlobSha1(Encoding.UTF8.GetBytes(Config));
        Assert.Equal($"../../blobs/{configEtag}", new FileInfo(Path.Combine(folder, "config.json")).LinkTarget);
        Assert.Equal(_weights, File.ReadAllBytes(Path.Combine(RepoFolder, "blobs", weights.Etag)));
        Assert.Equal(Config, File.ReadAllText(Path.Combine(folder, "config.json")));
        Assert.Equal(
            new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" },
            Directory.GetFiles(folder).Select(Path.GetFileName).Order());
        Assert.Equal(4, Directory.GetFiles(Path.Combine(RepoFolder, "blobs")).Length);
        // Absent optional files get huggingface_hub's empty .no_exist markers.
        Assert.True(File.Exists(Path.Combine(RepoFolder, ".no_exist", FakeHub.Commit, "generation_config.json")));
        Assert.Contains(new HubDownloadProgress("model.safetensors", _weights.Length, _weights.Length), progress);
        Assert.All(_hub.Requests, r => Assert.Null(r.Authorization));
        Assert.Contains(_hub.Requests, r => r.Path == $"/cdn/{weights.Etag}");
    }

    [Fact]
    public async Task Second_resolve_uses_the_cache_without_any_request()
    {
        _hub.Add("model.safetensors", _weights, lfs: true);
        var first = await ResolveAsync();
        var requests = _hub.Requests.Count;

        Assert.Equal(first, await ResolveAsync());
        Assert.Equal(first, await ResolveAsync(allowDownload: false));
        Assert.Equal(first, await ResolveAsync(allowDownload: false, reference: $"{_hub.Repo}@{FakeHub.Commit}"));
        Assert.Equal(requests, _hub.Requests.Count);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task Partial_blob_is_resumed_with_a_range_request(bool serverIgnoresRange)
    {
        var weights = _hub.Add("model.safetensors", _weights, lfs: true);
        _hub.IgnoreRange = serverIgnoresRange;
        var partial = Path.Combine(RepoFolder, "blobs", weights.Etag + ".incomplete");
        Directory.CreateDirectory(Path.GetDirectoryName(partial)!);
        File.WriteAllBytes(partial, _weights[..100_000]);

        var folder = await ResolveAsync();

        Assert.Contains(_hub.Requests, r => r.Method == "GET" && r.Path == $"/cdn/{weights.Etag}" && r.Range == "bytes=100000-");
        Assert.Equal(_weights, File.ReadAllBytes(Path.Combine(folder, "model.safetensors")));
        Assert.False(File.Exists(partial));
    }

    [Fact]
    public async Task Token_is_sent_as_bearer()
    {
        _hub.Add("model.safetensors", _weights, lfs: true);
        _hub.RequiredToken = "hf_test_secret";

        var folder = await ResolveAsync(Options(token: "hf_test_secret"));

        Assert.True(CheckpointFiles.IsComplete(folder));
        Assert.Contains(_hub.Requests, r => r.Path.Contains("/resolve/") && r.Authorization == "Bearer hf_test_secret");
    }

    [Fact]
    public async Task Unauthorized_is_a_failed_precondition_naming_HF_TOKEN()
    {
        _hub.Add("model.safetensors", _weights, lfs: true);
        _hub.RequiredToken = "hf_test_secret";

        var e = await Assert.ThrowsAsync<StitchingException>(() => ResolveAsync());

        Assert.Equal(ErrorKind.FailedPrecondition, e.Kind);
        Assert.Contains("HF_TOKEN", e.Message);
        Assert.Contains("401", e.Message);
        var wrong = await Assert.ThrowsAsync<StitchingException>(() => ResolveAsync(Options(token: "hf_wrong")));
        Assert.Equal(ErrorKind.FailedPrecondition, wrong.Kind);
    }

    [Fact]
    public async Task Missing_weights_are_not_found_naming_repo_revision_and_file()
    {
        var e = await Assert.ThrowsAsync<StitchingException>(() => ResolveAsync());

        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains(_hub.Repo + "@main", e.Message);
        Assert.Contains("model.safetensors", e.Message);
        Assert.False(File.Exists(Path.Combine(RepoFolder, "refs", "main")));
    }

    [Fact]
    public async Task Missing_required_file_is_not_found_naming_it()
    {
        _hub.Add("model.safetensors", _weights, lfs: true);
        _hub.Remove("tokenizer.json");

        var e = await Assert.ThrowsAsync<StitchingException>(() => ResolveAsync());

        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains("tokenizer.json", e.Message);
        Assert.Contains(_hub.Repo, e.Message);
        Assert.Contains("main", e.Message);
    }

    [Fact]
    public async Task Corrupt_lfs_blob_is_data_loss_and_leaves_no_blob()
    {
        var corrupt = (byte[])_weights.Clone();
        corrupt[12345] ^= 0xFF;
        var weights = _hub.Add("model.safetensors", _weights, lfs: true, served: corrupt);

        var e = await Assert.ThrowsAsync<StitchingException>(() => ResolveAsync());

        Assert.Equal(ErrorKind.DataLoss, e.Kind);
        Assert.Contains(weights.Etag, e.Message);
        Assert.Empty(Directory.GetFiles(Path.Combine(RepoFolder, "blobs"), weights.Etag + "*"));
        Assert.False(File.Exists(Path.Combine(RepoFolder, "snapshots", FakeHub.Commit, "model.safetensors")));
    }

    [Fact]
    public async Task Sharded_checkpoint_downloads_the_index_and_every_shard()
    {
        var shard1 = _hub.Add("model-00001-of-00002.safetensors", RandomBytes(50_000, seed: 2), lfs: true);
        var shard2 = _hub.Add("model-00002-of-00002.safetensors", RandomBytes(60_000, seed: 3), lfs: true);
        _hub.AddText("model.safetensors.index.json", """
            {"metadata": {"total_size": 110000}, "weight_map": {
              "a.weight": "model-00001-of-00002.safetensors",
              "b.weight": "model-00002-of-00002.safetensors",
              "c.weight": "model-00001-of-00002.safetensors"}}
            """);

        var folder = await ResolveAsync();

        Assert.True(CheckpointFiles.IsComplete(folder));
        Assert.Equal($"../../blobs/{shard1.Etag}", new FileInfo(Path.Combine(folder, "model-00001-of-00002.safetensors")).LinkTarget);
        Assert.Equal(shard2.Bytes, File.ReadAllBytes(Path.Combine(folder, "model-00002-of-00002.safetensors")));
        Assert.True(File.Exists(Path.Combine(RepoFolder, ".no_exist", FakeHub.Commit, "model.safetensors")));
        Assert.Single(_hub.Requests, r => r.Method == "GET" && r.Path == $"/cdn/{shard1.Etag}");
    }

    [Fact]
    public async Task Cache_made_by_huggingface_hub_resolves_without_download()
    {
        const string commit = "fedcba9876543210fedcba9876543210fedcba98";
        var snapshot = Path.Combine(RepoFolder, "snapshots", commit);
        Directory.CreateDirectory(snapshot);
        Directory.CreateDirectory(Path.Combine(RepoFolder, "blobs"));
        Directory.CreateDirectory(Path.Combine(RepoFolder, "refs"));
        File.WriteAllText(Path.Combine(RepoFolder, "refs", "main"), commit);
        foreach (var (name, bytes, lfs) in new[] { ("config.json", Encoding.UTF8.GetBytes(Config), false), ("tokenizer.json", "{}"u8.ToArray(), false), ("model.safetensors", _weights, true) })
        {
            var etag = new FakeHub.HubFile(bytes, lfs).Etag;
            File.WriteAllBytes(Path.Combine(RepoFolder, "blobs", etag), bytes);
            File.CreateSymbolicLink(Path.Combine(snapshot, name), $"../../blobs/{etag}");
        }

        Assert.Equal(snapshot, await ResolveAsync(allowDownload: false));
        Assert.Equal(snapshot, await ResolveAsync(allowDownload: false, reference: $"{_hub.Repo}@{commit}"));
        Assert.Empty(_hub.Requests);
        var e = await Assert.ThrowsAsync<StitchingException>(() => ResolveAsync(allowDownload: false, reference: $"{_hub.Repo}@v2"));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains($"stitch models pull {_hub.Repo}@v2", e.Message);
    }

    [Fact]
    public async Task Offline_mode_uses_only_the_cache()
    {
        _hub.Add("model.safetensors", _weights, lfs: true);

        var e = await Assert.ThrowsAsync<StitchingException>(() => ResolveAsync(Options(offline: true)));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
        Assert.Contains("HF_HUB_OFFLINE", e.Message);
        Assert.Empty(_hub.Requests);
        using (var downloader = new HubDownloader(Options(offline: true)))
            Assert.Equal(ErrorKind.FailedPrecondition, (await Assert.ThrowsAsync<StitchingException>(() => downloader.DownloadAsync(_hub.Repo))).Kind);

        var folder = await ResolveAsync();
        var requests = _hub.Requests.Count;
        Assert.Equal(folder, await ResolveAsync(Options(offline: true)));
        Assert.Equal(requests, _hub.Requests.Count);
    }

    [Fact]
    public async Task Incomplete_snapshot_is_completed_by_download()
    {
        _hub.Add("model.safetensors", _weights, lfs: true);
        var folder = await ResolveAsync();
        File.Delete(Path.Combine(folder, "tokenizer.json"));

        await Assert.ThrowsAsync<StitchingException>(() => ResolveAsync(allowDownload: false));
        Assert.Equal(folder, await ResolveAsync());
        Assert.True(CheckpointFiles.IsComplete(folder));
        // The blobs were already there: nothing was fetched from the CDN a second time.
        Assert.Single(_hub.Requests, r => r.Method == "GET" && r.Path.StartsWith("/cdn/"));
    }

    private static byte[] RandomBytes(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }
}

/// <summary>Parsing model references and reading huggingface_hub's environment variables.</summary>
[Trait("Category", "Unit")]
public sealed class HubReferenceTests
{
    [Theory]
    [InlineData("openai-community/gpt2", "openai-community/gpt2", "main")]
    [InlineData("EleutherAI/pythia-70m@v0.1", "EleutherAI/pythia-70m", "v0.1")]
    [InlineData("acme/model.v2@refs/pr/3", "acme/model.v2", "refs/pr/3")]
    [InlineData("acme/m@0123456789abcdef0123456789abcdef01234567", "acme/m", "0123456789abcdef0123456789abcdef01234567")]
    public void Parses_repo_ids(string text, string repo, string revision) =>
        Assert.Equal(new HubModelReference(repo, revision), ModelReference.Parse(text));

    [Theory]
    [InlineData("gpt2")]
    [InlineData("acme/")]
    [InlineData("acme/bad--name")]
    [InlineData("acme/bad..name")]
    [InlineData("-acme/name")]
    [InlineData("acme/name@")]
    [InlineData("acme/name@a b")]
    [InlineData("acme/name@../x")]
    [InlineData(" ")]
    public void Rejects_malformed_ids(string text)
    {
        var e = Assert.Throws<StitchingException>(() => ModelReference.Parse(text));
        Assert.Equal(ErrorKind.InvalidArgument, e.Kind);
        Assert.Equal("model", e.Field);
    }

    [Fact]
    public void Existing_directory_is_local_and_missing_path_is_not_found()
    {
        using var dir = new TempDir();
        Assert.Equal(new LocalModelReference(dir.Path), ModelReference.Parse(dir.Path));
        var e = Assert.Throws<StitchingException>(() => ModelReference.Parse(Path.Combine(dir.Path, "absent")));
        Assert.Equal(ErrorKind.NotFound, e.Kind);
    }

    [Fact]
    public void Options_follow_huggingface_hub_variables()
    {
        using var home = new TempDir();
        File.WriteAllText(Path.Combine(home.Path, "token"), "hf_from_file\n");
        var env = new Dictionary<string, string> { ["HF_HOME"] = home.Path, ["HF_HUB_OFFLINE"] = "yes", ["HF_ENDPOINT"] = "https://mirror.example/" };

        var options = HubOptions.FromEnvironment(env.GetValueOrDefault);
        Assert.Equal(Path.Combine(home.Path, "hub"), options.CacheRoot);
        Assert.Equal("hf_from_file", options.Token);
        Assert.True(options.Offline);
        Assert.Equal("https://mirror.example", options.Endpoint);

        env["HF_HUB_CACHE"] = "/elsewhere/hub";
        env["HF_TOKEN"] = "hf_env";
        options = HubOptions.FromEnvironment(env.GetValueOrDefault);
        Assert.Equal("/elsewhere/hub", options.CacheRoot);
        Assert.Equal("hf_env", options.Token);

        var bare = HubOptions.FromEnvironment(_ => null);
        Assert.EndsWith(Path.Combine(".cache", "huggingface", "hub"), bare.CacheRoot);
        Assert.Equal(HubOptions.DefaultEndpoint, bare.Endpoint);
        Assert.False(bare.Offline);
    }
}
