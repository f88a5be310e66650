using System.CommandLine;
using Grpc.Core;
using Grpc.Net.Client;
using Stitching.Server;

namespace Stitching.Cli.Commands;

/// <summary>
/// Options every client command shares and the connection they produce: a channel to --server, or to
/// an embedded server started for the duration of the command.
/// </summary>
public sealed class ServerConnection : IAsyncDisposable
{
    public static readonly Option<string?> ServerOption = new("--server") { Description = "Address of a running server (http://host:port). Without it, an embedded server starts in this process.", Recursive = true };
    public static readonly Option<string?> StoreOption = new("--store") { Description = "Artifact store folder for the embedded server (default: $STITCHING_STORE or ~/.local/share/stitching/store).", Recursive = true };

    private readonly EmbeddedServer? _embedded;

    private ServerConnection(GrpcChannel channel, EmbeddedServer? embedded)
    {
        Channel = channel;
        _embedded = embedded;
    }

    public GrpcChannel Channel { get; }
    public bool IsEmbedded => _embedded is not null;

    public static async Task<ServerConnection> OpenAsync(ParseResult parse, CancellationToken ct)
    {
        var server = parse.GetValue(ServerOption);
        if (!string.IsNullOrEmpty(server))
            return new ServerConnection(GrpcChannel.ForAddress(server, new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20 }), null);
        var embedded = await EmbeddedServer.StartAsync(new EmbeddedServerOptions { StoreRoot = parse.GetValue(StoreOption) }, ct);
        return new ServerConnection(embedded.CreateChannel(), embedded);
    }

    /// <summary>Runs a client action, turning gRPC errors into one readable line and exit code 1.</summary>
    public static async Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<ServerConnection, Task<int>> action)
    {
        try
        {
            await using var connection = await OpenAsync(parse, ct);
            return await action(connection);
        }
        catch (RpcException e)
        {
            Console.Error.WriteLine($"error: {e.StatusCode}: {e.Status.Detail}");
            return 1;
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        if (_embedded is not null) await _embedded.DisposeAsync();
    }
}
