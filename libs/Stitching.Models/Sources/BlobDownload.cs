using System.Net;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Stitching.Core.Errors;

namespace Stitching.Models.Sources;

/// <summary>
/// Streams one blob into <c>blobs/{etag}.incomplete</c>, resuming from its length with a Range request
/// (appending on 206, restarting on 200), checks size and, for LFS blobs, the sha256 the etag names, then
/// renames it to <c>blobs/{etag}</c>. A blob that fails the check is deleted.
/// </summary>
internal static partial class BlobDownload
{
    private const int BufferSize = 1 << 20;

    public static async Task RunAsync(HubHttp http, HubFileHead head, string blobPath, string what, string file,
        Action<HubDownloadProgress>? progress, CancellationToken ct)
    {
        var partial = blobPath + HubCache.IncompleteSuffix;
        Directory.CreateDirectory(Path.GetDirectoryName(blobPath)!);
        await using (var stream = OpenExclusive(partial, what))
        {
            var offset = stream.Length;
            var response = await http.GetAsync(head.DownloadUri, offset, what, ct).ConfigureAwait(false);
            if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable)
            {
                // The partial file is as long as (or longer than) the blob: start over.
                response.Dispose();
                offset = 0;
                response = await http.GetAsync(head.DownloadUri, 0, what, ct).ConfigureAwait(false);
            }
            using (response)
            {
                if (response.StatusCode != HttpStatusCode.PartialContent || response.Content.Headers.ContentRange?.From != offset)
                    offset = 0;
                stream.SetLength(offset);
                stream.Position = offset;
                var total = head.Size ?? (response.Content.Headers.ContentLength + offset);
                await CopyAsync(response, stream, offset, total, file, progress, ct).ConfigureAwait(false);
            }
            await stream.FlushAsync(ct).ConfigureAwait(false);
            stream.Flush(flushToDisk: true);
        }
        await VerifyAsync(partial, head, what, ct).ConfigureAwait(false);
        File.Move(partial, blobPath, overwrite: true);
    }

    private static FileStream OpenExclusive(string path, string what)
    {
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, BufferSize, useAsync: true);
        }
        catch (IOException)
        {
            throw StitchingException.FailedPrecondition($"{what}: {path} is being written by another download; wait for it to finish, or delete the file if no download is running.", "model");
        }
    }

    private static async Task CopyAsync(HttpResponseMessage response, FileStream target, long done, long? total, string file,
        Action<HubDownloadProgress>? progress, CancellationToken ct)
    {
        await using var source = await response.Content.ReadAsStreamAsync(ct).ConfigureAwait(false);
        var buffer = new byte[BufferSize];
        progress?.Invoke(new HubDownloadProgress(file, done, total));
        int read;
        while ((read = await source.ReadAsync(buffer, ct).ConfigureAwait(false)) > 0)
        {
            await target.WriteAsync(buffer.AsMemory(0, read), ct).ConfigureAwait(false);
            done += read;
            progress?.Invoke(new HubDownloadProgress(file, done, total));
        }
    }

    private static async Task VerifyAsync(string partial, HubFileHead head, string what, CancellationToken ct)
    {
        var length = new FileInfo(partial).Length;
        string? problem = null;
        if (head.Size is { } size && size != length)
            problem = $"is {length} bytes but the hub announced {size}";
        else if (Sha256Pattern().IsMatch(head.Etag!))
        {
            await using var stream = new FileStream(partial, FileMode.Open, FileAccess.Read, FileShare.Read, BufferSize, useAsync: true);
            var actual = Convert.ToHexStringLower(await SHA256.HashDataAsync(stream, ct).ConfigureAwait(false));
            if (actual != head.Etag) problem = $"has sha256 {actual} but the hub's etag is {head.Etag}";
        }
        if (problem is null) return;
        File.Delete(partial);
        throw StitchingException.DataCorrupted($"{what}: the downloaded file {problem}; the bad download was deleted, run the command again (check HF_ENDPOINT if it keeps happening).");
    }

    [GeneratedRegex("^[0-9a-f]{64}$")]
    private static partial Regex Sha256Pattern();
}
