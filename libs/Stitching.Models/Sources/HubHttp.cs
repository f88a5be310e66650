using System.Net;
using System.Net.Http.Headers;
using Stitching.Core.Errors;

namespace Stitching.Models.Sources;

/// <summary>What a HEAD on <c>/resolve/</c> tells about one file: the commit, the blob id and where its bytes are.</summary>
/// <param name="Found">False when the hub answered 404 (then only <see cref="Commit"/> and <see cref="ErrorCode"/> may be set).</param>
/// <param name="Commit">X-Repo-Commit: the commit the revision resolved to.</param>
/// <param name="Etag">X-Linked-Etag (LFS: the sha256) or ETag (git blob sha1), without quotes or W/.</param>
/// <param name="Size">X-Linked-Size, or Content-Length of a direct answer.</param>
/// <param name="DownloadUri">Where to GET the bytes: the hub URL, or the CDN URL it redirected to.</param>
/// <param name="ErrorCode">X-Error-Code of a 404 (EntryNotFound, RevisionNotFound, RepoNotFound).</param>
internal sealed record HubFileHead(bool Found, string? Commit, string? Etag, long? Size, Uri DownloadUri, string? ErrorCode);

/// <summary>
/// The HTTP side of hub downloads: HEAD for metadata (following only relative redirects, as huggingface_hub
/// does, so an LFS redirect's headers are the ones read), GET following every redirect with an optional
/// Range, the token sent only to the hub's own host, and hub status codes mapped to StitchingExceptions.
/// </summary>
internal sealed class HubHttp : IDisposable
{
    private const int MaxRedirects = 10;
    private readonly HttpClient _client;
    private readonly Uri _endpoint;
    private readonly string? _token;

    public HubHttp(HubOptions options)
    {
        if (!Uri.TryCreate(options.Endpoint.TrimEnd('/') + "/", UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            throw StitchingException.InvalidArgument("endpoint", $"'{options.Endpoint}' is not an http(s) URL; set HF_ENDPOINT to the hub's base URL, e.g. {HubOptions.DefaultEndpoint}.");
        _endpoint = endpoint;
        _token = options.Token;
        _client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        _client.DefaultRequestHeaders.UserAgent.Add(new ProductInfoHeaderValue("stitching", "1.0"));
    }

    public Uri FileUri(string repoId, string revision, string file) =>
        new(_endpoint, $"{repoId}/resolve/{Uri.EscapeDataString(revision)}/{string.Join('/', file.Split('/').Select(Uri.EscapeDataString))}");

    public async Task<HubFileHead> HeadAsync(Uri uri, string what, CancellationToken ct)
    {
        for (var hop = 0; hop <= MaxRedirects; hop++)
        {
            using var response = await SendAsync(HttpMethod.Head, uri, rangeStart: 0, ct).ConfigureAwait(false);
            var location = IsRedirect(response.StatusCode) ? response.Headers.Location : null;
            if (location is { IsAbsoluteUri: false })
            {
                uri = new Uri(uri, location);
                continue;
            }
            var commit = Header(response, "X-Repo-Commit");
            if (response.StatusCode == HttpStatusCode.NotFound)
                return new HubFileHead(false, commit, null, null, uri, Header(response, "X-Error-Code"));
            if (location is null && !response.IsSuccessStatusCode) throw Failure(response, what);
            var linkedSize = long.TryParse(Header(response, "X-Linked-Size"), out var s) ? s : (long?)null;
            return new HubFileHead(true, commit, NormalizeEtag(Header(response, "X-Linked-Etag") ?? Header(response, "ETag")),
                linkedSize ?? (location is null ? response.Content.Headers.ContentLength : null),
                location ?? uri, null);
        }
        throw TooManyRedirects(what);
    }

    /// <summary>GETs <paramref name="uri"/> from byte <paramref name="rangeStart"/> on, following redirects; the caller disposes the answer.</summary>
    public async Task<HttpResponseMessage> GetAsync(Uri uri, long rangeStart, string what, CancellationToken ct)
    {
        for (var hop = 0; hop <= MaxRedirects; hop++)
        {
            var response = await SendAsync(HttpMethod.Get, uri, rangeStart, ct).ConfigureAwait(false);
            if (IsRedirect(response.StatusCode) && response.Headers.Location is { } location)
            {
                response.Dispose();
                uri = new Uri(uri, location);
                continue;
            }
            if (response.IsSuccessStatusCode || response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) return response;
            using (response) throw Failure(response, what);
        }
        throw TooManyRedirects(what);
    }

    /// <summary>A sentence-long error for a refused or failed request.</summary>
    public Exception Failure(HttpResponseMessage response, string what)
    {
        var status = $"{(int)response.StatusCode} {response.ReasonPhrase}".Trim();
        return response.StatusCode switch
        {
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden when _token is null => StitchingException.FailedPrecondition(
                $"{what}: the hub answered {status} and no token was sent. The repo is gated, private or absent: set HF_TOKEN (or write a token to $HF_HOME/token) to a token that can read it, after accepting the model's terms on its page if it is gated.", "model"),
            HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden => StitchingException.FailedPrecondition(
                $"{what}: the hub answered {status} to the token sent. Set HF_TOKEN to a token that can read this repo, and accept the model's terms on its page if it is gated.", "model"),
            HttpStatusCode.NotFound => StitchingException.NotFound($"{what}: the hub answered {status}; check the repo id, revision and file name.", "model"),
            HttpStatusCode.TooManyRequests => StitchingException.ResourceExhausted($"{what}: the hub answered {status} (rate limited); wait and try again, or set HF_TOKEN for a higher limit.", "model"),
            _ => new StitchingException(ErrorKind.Unavailable, $"{what}: the hub answered {status}; try again later, or check HF_ENDPOINT."),
        };
    }

    /// <summary>An ETag as a blob name: the W/ prefix and quotes stripped, as huggingface_hub does.</summary>
    public static string? NormalizeEtag(string? etag)
    {
        if (string.IsNullOrWhiteSpace(etag)) return null;
        var value = etag.Trim();
        if (value.StartsWith("W/", StringComparison.Ordinal)) value = value[2..];
        return value.Trim('"');
    }

    private async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri uri, long rangeStart, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, uri);
        request.Headers.AcceptEncoding.Add(new StringWithQualityHeaderValue("identity"));
        if (_token is not null && string.Equals(uri.Authority, _endpoint.Authority, StringComparison.OrdinalIgnoreCase))
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        if (rangeStart > 0) request.Headers.Range = new RangeHeaderValue(rangeStart, null);
        try
        {
            return await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
        }
        catch (HttpRequestException e)
        {
            throw new StitchingException(ErrorKind.Unavailable, $"cannot reach {uri.GetLeftPart(UriPartial.Authority)} ({e.Message}); check the network and HF_ENDPOINT, or set HF_HUB_OFFLINE=1 to use only the cache.", null, e);
        }
    }

    private static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    private static bool IsRedirect(HttpStatusCode code) => (int)code is >= 300 and < 400;

    private static StitchingException TooManyRedirects(string what) =>
        new(ErrorKind.Unavailable, $"{what}: more than {MaxRedirects} redirects; check HF_ENDPOINT.");

    public void Dispose() => _client.Dispose();
}
