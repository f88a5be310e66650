namespace Stitching.Hosting.Clients;

/// <summary>Adds "authorization: Bearer TOKEN" to every HTTP/2 request of a gRPC channel (plain or TLS).</summary>
public sealed class BearerHandler(string token) : DelegatingHandler
{
    protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
    {
        request.Headers.TryAddWithoutValidation("authorization", "Bearer " + token);
        return base.SendAsync(request, ct);
    }
}
