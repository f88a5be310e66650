using System.Security.Cryptography;
using System.Text;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace Stitching.Hosting;

/// <summary>
/// Bearer-token authentication: when Stitching:Auth:Tokens (or STITCHING_AUTH_TOKENS, comma-separated) holds
/// any token, every RPC except grpc.health.v1 needs "authorization: Bearer TOKEN" with one of them, else
/// UNAUTHENTICATED. Tokens are compared in constant time. Without tokens the server is open (loopback use).
/// </summary>
public sealed class AuthInterceptor(IOptions<StitchingOptions> options, IConfiguration configuration) : Interceptor
{
    public const string EnvironmentVariable = "STITCHING_AUTH_TOKENS";
    private readonly byte[][] _tokens = options.Value.Auth.Tokens
        .Concat((configuration[EnvironmentVariable] ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        .Where(t => t.Length > 0).Distinct().Select(t => Encoding.UTF8.GetBytes(t)).ToArray();

    public bool Enabled => _tokens.Length > 0;

    /// <summary>The token this host's own calls to other services send (the first configured), or null when authentication is off.</summary>
    public string? ServiceToken => Enabled ? Encoding.UTF8.GetString(_tokens[0]) : null;

    /// <summary>Whether a call carries a valid token (always true when authentication is off).</summary>
    public bool IsAuthenticated(ServerCallContext context)
    {
        if (!Enabled) return true;
        var header = context.RequestHeaders.GetValue("authorization");
        if (header is null || !header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase)) return false;
        var given = Encoding.UTF8.GetBytes(header["Bearer ".Length..].Trim());
        var ok = false;
        foreach (var t in _tokens) ok |= CryptographicOperations.FixedTimeEquals(t, given);
        return ok;
    }

    private void Require(ServerCallContext context)
    {
        if (context.Method.StartsWith("/grpc.health.v1.Health/", StringComparison.Ordinal)) return;
        if (!IsAuthenticated(context))
            throw new RpcException(new Status(StatusCode.Unauthenticated,
                "this server needs a bearer token: send the metadata header 'authorization: Bearer TOKEN' (stitch --token, STITCHING_TOKEN, or the Python client's token=)."));
    }

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        Require(context);
        return continuation(request, context);
    }

    public override Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Require(context);
        return continuation(requestStream, context);
    }

    public override Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Require(context);
        return continuation(request, responseStream, context);
    }

    public override Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        Require(context);
        return continuation(requestStream, responseStream, context);
    }
}
