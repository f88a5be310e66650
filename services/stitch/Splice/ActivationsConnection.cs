using Grpc.Net.Client;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;
using Stitching.Contracts.Activations.V1;
using Stitching.Core.Errors;
using Stitching.Hosting;

namespace Stitching.Stitch.Splice;

/// <summary>
/// A gRPC client of the activations service. We call it over gRPC rather than sharing its in-process
/// ModelHost: only the activations service holds language models (architecture.md), so the stitch
/// service stays deployable on its own (Stitching:ActivationsAddress in Kubernetes) and the all-in-one
/// host takes the very same path through loopback (the default: this host's own address), at the cost
/// of copying a spliced stream per batch, which is small next to a forward pass.
/// </summary>
public sealed class ActivationsConnection(IServer server, IOptions<StitchingOptions> options) : IDisposable
{
    private readonly Lazy<GrpcChannel> _channel = new(() => GrpcChannel.ForAddress(Address(server, options.Value),
        new GrpcChannelOptions { MaxReceiveMessageSize = options.Value.MaxMessageBytes, MaxSendMessageSize = options.Value.MaxMessageBytes }));

    public ActivationsService.ActivationsServiceClient Client => new(_channel.Value);

    private static string Address(IServer server, StitchingOptions o)
    {
        if (!string.IsNullOrEmpty(o.ActivationsAddress)) return o.ActivationsAddress;
        var own = server.Features.Get<IServerAddressesFeature>()?.Addresses.FirstOrDefault()
            ?? throw StitchingException.FailedPrecondition("this host has no listening address to reach the activations service on; set Stitching:ActivationsAddress.");
        // a wildcard bind ("http://+:8080", "http://[::]:8080") is reached through loopback
        var uri = new Uri(own.Replace("://+", "://localhost").Replace("://*", "://localhost"));
        return uri.Host is "0.0.0.0" or "[::]" or "::" ? new UriBuilder(uri) { Host = "localhost" }.Uri.ToString().TrimEnd('/') : own;
    }

    public void Dispose()
    {
        if (_channel.IsValueCreated) _channel.Value.Dispose();
    }
}
