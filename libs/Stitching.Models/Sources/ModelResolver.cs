using Stitching.Core.Errors;

namespace Stitching.Models.Sources;

/// <summary>
/// Turns what a user named as a model into a local checkpoint folder: a folder as it is; a Hugging Face repo
/// id from the hub cache when its snapshot is complete, else downloaded when allowed.
/// </summary>
public sealed class ModelResolver(HubOptions? options = null)
{
    public HubOptions Options { get; } = options ?? HubOptions.FromEnvironment();

    /// <summary>The checkpoint folder for <paramref name="reference"/> (a folder path, or ORG/NAME[@REVISION]).</summary>
    /// <param name="allowDownload">When false a repo id resolves only from the cache.</param>
    public async Task<string> ResolveAsync(string reference, bool allowDownload,
        Action<HubDownloadProgress>? progress = null, CancellationToken ct = default)
    {
        switch (ModelReference.Parse(reference))
        {
            case LocalModelReference local:
                return local.Directory;
            case HubModelReference hub:
                var cache = new HubCache(Options.CacheRoot);
                if (cache.FindSnapshot(hub.RepoId, hub.Revision) is { } snapshot && CheckpointFiles.IsComplete(snapshot))
                    return snapshot;
                if (Options.Offline)
                    throw StitchingException.NotFound(
                        $"model: {hub} is not complete in the Hugging Face cache at {cache.Root} and offline mode is on (HF_HUB_OFFLINE); unset HF_HUB_OFFLINE and run `stitch models pull {hub}`, or pass a local checkpoint folder.", "model");
                if (!allowDownload)
                    throw StitchingException.NotFound(
                        $"model: {hub} is not complete in the Hugging Face cache at {cache.Root}; download it with `stitch models pull {hub}` (or `huggingface-cli download {hub.RepoId} --revision {hub.Revision}`), or pass a local checkpoint folder.", "model");
                using (var downloader = new HubDownloader(Options))
                    return await downloader.DownloadAsync(hub.RepoId, hub.Revision, progress, ct).ConfigureAwait(false);
            default:
                throw new InvalidOperationException("unknown model reference kind");
        }
    }
}
