using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Stitching.Tests.Fixtures;

/// <summary>
/// A loopback Kestrel server that answers like huggingface.co for one model repo:
/// <c>/{repo}/resolve/{revision}/{file}</c> sends X-Repo-Commit; small (git) files answer 200 with their git
/// blob sha1 as ETag; LFS files answer 302 to <c>/cdn/{sha256}</c> with X-Linked-Etag and X-Linked-Size;
/// absent files answer 404 with X-Error-Code EntryNotFound; a missing token answers 401 when one is required.
/// Every request is recorded.
/// </summary>
public sealed class FakeHub : IAsyncDisposable
{
    public const string Commit = "0123456789abcdef0123456789abcdef01234567";
    private readonly WebApplication _app;
    private readonly ConcurrentDictionary<string, HubFile> _files = new();

    private FakeHub(WebApplication app, string repo)
    {
        _app = app;
        Repo = repo;
    }

    public string Repo { get; }
    public string Endpoint { get; private set; } = "";
    /// <summary>When set, every request without <c>Authorization: Bearer {RequiredToken}</c> gets 401.</summary>
    public string? RequiredToken { get; set; }
    /// <summary>When true the CDN ignores Range and always answers 200 with the whole file.</summary>
    public bool IgnoreRange { get; set; }
    public ConcurrentQueue<Seen> Requests { get; } = new();

    /// <summary>One request as the server saw it.</summary>
    public sealed record Seen(string Method, string Path, string? Range, string? Authorization);

    /// <summary>A repo file; <see cref="Served"/> replaces the bytes on the wire (to simulate corruption).</summary>
    public sealed record HubFile(byte[] Bytes, bool Lfs, byte[]? Served = null)
    {
        public string Etag => Lfs ? Convert.ToHexStringLower(SHA256.HashData(Bytes)) : GitBlobSha1(Bytes);
    }

    public static string GitBlobSha1(byte[] bytes) =>
        Convert.ToHexStringLower(SHA1.HashData([.. Encoding.ASCII.GetBytes($"blob {bytes.Length}\0"), .. bytes]));

    public HubFile Add(string name, byte[] bytes, bool lfs = false, byte[]? served = null) => _files[name] = new HubFile(bytes, lfs, served);
    public HubFile AddText(string name, string text) => Add(name, Encoding.UTF8.GetBytes(text));
    public void Remove(string name) => _files.TryRemove(name, out _);

    public static async Task<FakeHub> StartAsync(string repo = "acme/tiny-model")
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var hub = new FakeHub(app, repo);
        app.Run(hub.HandleAsync);
        await app.StartAsync();
        hub.Endpoint = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return hub;
    }

    private async Task HandleAsync(HttpContext ctx)
    {
        var req = ctx.Request;
        var path = req.Path.Value ?? "";
        Requests.Enqueue(new Seen(req.Method, path, req.Headers.Range.FirstOrDefault(), req.Headers.Authorization.FirstOrDefault()));
        if (RequiredToken is not null && req.Headers.Authorization.ToString() != $"Bearer {RequiredToken}")
        {
            ctx.Response.StatusCode = 401;
            ctx.Response.Headers["X-Error-Code"] = "GatedRepo";
            return;
        }
        if (path.StartsWith("/cdn/", StringComparison.Ordinal))
        {
            var blob = _files.Values.FirstOrDefault(f => f.Lfs && f.Etag == path["/cdn/".Length..]);
            if (blob is null) { ctx.Response.StatusCode = 404; return; }
            ctx.Response.Headers.ETag = "\"cdn-etag-not-the-blob-id\"";
            await ServeAsync(ctx, blob.Served ?? blob.Bytes, honorRange: !IgnoreRange);
            return;
        }
        var prefix = $"/{Repo}/resolve/";
        if (!path.StartsWith(prefix, StringComparison.Ordinal)) { ctx.Response.StatusCode = 404; ctx.Response.Headers["X-Error-Code"] = "RepoNotFound"; return; }
        var rest = path[prefix.Length..];
        var slash = rest.IndexOf('/');
        var revision = rest[..slash];
        var name = rest[(slash + 1)..];
        if (revision is not ("main" or Commit)) { ctx.Response.StatusCode = 404; ctx.Response.Headers["X-Error-Code"] = "RevisionNotFound"; return; }
        ctx.Response.Headers["X-Repo-Commit"] = Commit;
        if (!_files.TryGetValue(name, out var file)) { ctx.Response.StatusCode = 404; ctx.Response.Headers["X-Error-Code"] = "EntryNotFound"; return; }
        if (file.Lfs)
        {
            ctx.Response.StatusCode = 302;
            ctx.Response.Headers.Location = $"{Endpoint}/cdn/{file.Etag}";
            ctx.Response.Headers["X-Linked-Etag"] = $"\"{file.Etag}\"";
            ctx.Response.Headers["X-Linked-Size"] = file.Bytes.Length.ToString();
            return;
        }
        ctx.Response.Headers.ETag = $"\"{file.Etag}\"";
        await ServeAsync(ctx, file.Served ?? file.Bytes, honorRange: true);
    }

    private static async Task ServeAsync(HttpContext ctx, byte[] bytes, bool honorRange)
    {
        long start = 0;
        var range = ctx.Request.Headers.Range.ToString();
        if (honorRange && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-'))
        {
            start = long.Parse(range["bytes=".Length..^1]);
            if (start >= bytes.Length)
            {
                ctx.Response.StatusCode = 416;
                ctx.Response.Headers.ContentRange = $"bytes */{bytes.Length}";
                return;
            }
            ctx.Response.StatusCode = 206;
            ctx.Response.Headers.ContentRange = $"bytes {start}-{bytes.Length - 1}/{bytes.Length}";
        }
        ctx.Response.ContentLength = bytes.Length - start;
        if (HttpMethods.IsHead(ctx.Request.Method)) return;
        await ctx.Response.Body.WriteAsync(bytes.AsMemory((int)start));
    }

    public async ValueTask DisposeAsync() => await _app.DisposeAsync();
}
