using System.Text.RegularExpressions;
using Stitching.Core.Errors;

namespace Stitching.Models.Sources;

/// <summary>
/// Downloads the files a checkpoint needs from a Hugging Face hub into the hub cache (see <see cref="HubCache"/>):
/// config.json and tokenizer.json, the optional tokenizer_config.json, generation_config.json and
/// special_tokens_map.json when the repo has them, and model.safetensors or its index plus every shard.
/// All files come from the commit the first answer names, so a branch moving mid-download cannot mix commits;
/// refs/{revision} is written once every required file is in place. Downloads resume from <c>.incomplete</c> blobs.
/// </summary>
public sealed partial class HubDownloader : IDisposable
{
    private readonly HubHttp _http;

    public HubDownloader(HubOptions? options = null)
    {
        Options = options ?? HubOptions.FromEnvironment();
        Cache = new HubCache(Options.CacheRoot);
        _http = new HubHttp(Options);
    }

    public HubOptions Options { get; }
    public HubCache Cache { get; }

    /// <summary>Downloads <paramref name="repoId"/> at <paramref name="revision"/> and returns its snapshot folder.</summary>
    public async Task<string> DownloadAsync(string repoId, string revision = ModelReference.DefaultRevision,
        Action<HubDownloadProgress>? progress = null, CancellationToken ct = default)
    {
        if (Options.Offline)
            throw StitchingException.FailedPrecondition($"cannot download {repoId}@{revision}: offline mode is on (HF_HUB_OFFLINE); unset HF_HUB_OFFLINE to download.", "model");
        var pin = new Pin(repoId, revision);
        await FetchAsync(pin, CheckpointFiles.Config, required: true, progress, ct).ConfigureAwait(false);
        await FetchAsync(pin, CheckpointFiles.Tokenizer, required: true, progress, ct).ConfigureAwait(false);
        foreach (var file in CheckpointFiles.Optional)
            await FetchAsync(pin, file, required: false, progress, ct).ConfigureAwait(false);
        if (await FetchAsync(pin, CheckpointFiles.SingleWeights, required: false, progress, ct).ConfigureAwait(false) is null)
        {
            var index = await FetchAsync(pin, CheckpointFiles.WeightIndex, required: false, progress, ct).ConfigureAwait(false)
                ?? throw StitchingException.NotFound(
                    $"{repoId}@{revision} has neither {CheckpointFiles.SingleWeights} nor {CheckpointFiles.WeightIndex}; only safetensors checkpoints can be loaded, so pick a repo (or revision) that has them.", "model");
            foreach (var shard in CheckpointFiles.Shards(index))
                await FetchAsync(pin, shard, required: true, progress, ct).ConfigureAwait(false);
        }
        Cache.WriteRef(repoId, revision, pin.Commit!);
        return Cache.SnapshotFolder(repoId, pin.Commit!);
    }

    /// <summary>Fetches one file into the cache; returns its snapshot path, or null when an optional file is absent.</summary>
    private async Task<string?> FetchAsync(Pin pin, string file, bool required, Action<HubDownloadProgress>? progress, CancellationToken ct)
    {
        var what = $"{pin.RepoId}@{pin.Revision} {file}";
        var head = await _http.HeadAsync(_http.FileUri(pin.RepoId, pin.Commit ?? pin.Revision, file), what, ct).ConfigureAwait(false);
        var commit = pin.Commit ??= head.Commit ?? (HubCache.IsCommitHash(pin.Revision) ? pin.Revision : null);
        if (!head.Found)
        {
            if (required)
                throw StitchingException.NotFound(
                    $"{pin.RepoId} has no {file} at revision {pin.Revision} on {Options.Endpoint} ({head.ErrorCode ?? "404"}); check the repo id and revision (ORG/NAME@REVISION).", "model");
            if (commit is not null) Cache.MarkMissing(pin.RepoId, commit, file);
            return null;
        }
        if (commit is null)
            throw StitchingException.FailedPrecondition($"{what}: the answer had no X-Repo-Commit header; HF_ENDPOINT must point at a Hugging Face hub or a mirror that sends it.", "model");
        if (head.Etag is not { } etag || !BlobNamePattern().IsMatch(etag))
            throw StitchingException.FailedPrecondition($"{what}: the answer had no usable X-Linked-Etag or ETag header ('{head.Etag}'); HF_ENDPOINT must point at a Hugging Face hub or a mirror that sends it.", "model");

        var blob = Cache.BlobPath(pin.RepoId, etag);
        if (!File.Exists(blob))
            await BlobDownload.RunAsync(_http, head, blob, what, file, progress, ct).ConfigureAwait(false);
        return Cache.LinkSnapshotFile(pin.RepoId, commit, file, etag);
    }

    public void Dispose() => _http.Dispose();

    /// <summary>The repo and revision being downloaded, and the commit once the hub has named it.</summary>
    private sealed class Pin(string repoId, string revision)
    {
        public string RepoId { get; } = repoId;
        public string Revision { get; } = revision;
        public string? Commit { get; set; }
    }

    [GeneratedRegex("^[A-Za-z0-9_.-]+$")]
    private static partial Regex BlobNamePattern();
}
