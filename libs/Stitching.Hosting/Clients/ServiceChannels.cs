using System.Collections.Concurrent;
using Grpc.Net.Client;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using Stitching.Core.Errors;

namespace Stitching.Hosting.Clients;

/// <summary>
/// gRPC channels from one service host to the others (activations, stitch, sae, eval), one per address, kept for
/// the host's life. Each service's address comes from Stitching:{Service}Address (Kubernetes: http://stitch:50051);
/// empty means this host itself, the all-in-one default, reached through loopback like any other client.
/// With authentication on, calls carry the first configured token.
/// </summary>
public sealed class ServiceChannels(IServer server, IOptions<StitchingOptions> options, AuthInterceptor auth) : IDisposable
{
    public const string Activations = "activations", Stitch = "stitch", Sae = "sae", Eval = "eval";
    private readonly ConcurrentDictionary<string, Lazy<GrpcChannel>> _channels = new();

    /// <summary>The channel to <paramref name="service"/>'s host.</summary>
    public GrpcChannel For(string service)
    {
        var address = AddressOf(service);
        return _channels.GetOrAdd(address, a => new Lazy<GrpcChannel>(() => GrpcChannel.ForAddress(a, ChannelOptions(options.Value, auth)))).Value;
    }

    public string AddressOf(string service)
    {
        var o = options.Value;
        var configured = service switch
        {
            Activations => o.ActivationsAddress,
            Stitch => o.StitchAddress,
            Sae => o.SaeAddress,
            Eval => o.EvalAddress,
            _ => throw new ArgumentOutOfRangeException(nameof(service), service, "unknown service"),
        };
        return string.IsNullOrEmpty(configured) ? OwnAddress(server, service) : configured;
    }

    internal static GrpcChannelOptions ChannelOptions(StitchingOptions o, AuthInterceptor auth)
    {
        var channel = new GrpcChannelOptions { MaxReceiveMessageSize = o.MaxMessageBytes, MaxSendMessageSize = o.MaxMessageBytes };
        channel.HttpHandler = auth.ServiceToken is { } token ? new BearerHandler(token) { InnerHandler = NewHandler() } : NewHandler();
        return channel;
    }

    /// <summary>
    /// The HTTP handler of every channel this project opens: several HTTP/2 connections when one is full, and a
    /// 16 MiB initial stream window (the default 64 KiB grows only with measured round trips; on loopback reads of
    /// shard files ran 0.37 GB/s with it and 0.56 with 16 MiB, `dotnet run -c Release --project bench/Stitching.Benchmarks -- stream`).
    /// </summary>
    public static SocketsHttpHandler NewHandler() => new() { EnableMultipleHttp2Connections = true, InitialHttp2StreamWindowSize = 16 << 20 };

    internal static string OwnAddress(IServer server, string service)
    {
        var own = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw StitchingException.FailedPrecondition($"this host has no listening address to reach the {service} service on; set Stitching:{char.ToUpperInvariant(service[0])}{service[1..]}Address.");
        // a wildcard bind ("http://+:8080", "http://[::]:8080") is reached through loopback
        var uri = new Uri(own.Replace("://+", "://localhost").Replace("://*", "://localhost"));
        return uri.Host is "0.0.0.0" or "[::]" or "::" ? new UriBuilder(uri) { Host = "localhost" }.Uri.ToString().TrimEnd('/') : own;
    }

    public void Dispose()
    {
        foreach (var c in _channels.Values)
            if (c.IsValueCreated) c.Value.Dispose();
    }
}
