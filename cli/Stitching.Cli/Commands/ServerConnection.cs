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

    public static readonly Option<bool> VerboseOption = new("--verbose", "-v") { Description = "Show the embedded server's log lines (on stderr); without it a command prints only its results and progress.", Recursive = true };

    public static readonly Option<string?> TokenOption = new("--token") { Description = "Bearer token for a --server that requires one (default: $STITCHING_TOKEN).", Recursive = true };

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
        {
            var token = parse.GetValue(TokenOption) ?? Environment.GetEnvironmentVariable("STITCHING_TOKEN");
            var channelOptions = new GrpcChannelOptions { MaxReceiveMessageSize = 64 << 20, MaxSendMessageSize = 64 << 20 };
            var handler = Stitching.Hosting.Clients.ServiceChannels.NewHandler();
            channelOptions.HttpHandler = string.IsNullOrEmpty(token) ? handler : new Stitching.Hosting.Clients.BearerHandler(token) { InnerHandler = handler };
            return new ServerConnection(GrpcChannel.ForAddress(server, channelOptions), null);
        }
        var embedded = await EmbeddedServer.StartAsync(new EmbeddedServerOptions
        {
            StoreRoot = parse.GetValue(StoreOption),
            AllowedRoots = PathArguments(parse),
            MinimumLogLevel = parse.GetValue(VerboseOption) ? Microsoft.Extensions.Logging.LogLevel.Information : Microsoft.Extensions.Logging.LogLevel.None,
        }, ct);
        return new ServerConnection(embedded.CreateChannel(), embedded);
    }

    /// <summary>
    /// The folders the embedded server may read or write for this command: every argument that names an
    /// existing file (its folder) or folder, and the parent of an output path. The embedded server runs in
    /// the user's own process, so it reaches exactly what the user named and nothing else.
    /// </summary>
    internal static IReadOnlyList<string> PathArguments(ParseResult parse)
    {
        var roots = new HashSet<string>();
        foreach (var value in parse.Tokens.Where(t => t.Type == System.CommandLine.Parsing.TokenType.Argument).SelectMany(t => t.Value.Split(',')).Where(v => v.Length > 0))
        {
            var full = Path.GetFullPath(value);
            if (Directory.Exists(full)) roots.Add(full);
            else if (File.Exists(full) || (Path.GetDirectoryName(full) is { } parent && Directory.Exists(parent)))
                roots.Add(Path.GetDirectoryName(full)!);
        }
        return roots.ToList();
    }

    /// <summary>Runs a client action over a connection to --server or an embedded server, closing it after.</summary>
    public static async Task<int> RunAsync(ParseResult parse, CancellationToken ct, Func<ServerConnection, Task<int>> action)
    {
        // Errors propagate to Program's one handler: one line on stderr, ExitCode(e), the stack trace with --verbose.
        await using var connection = await OpenAsync(parse, ct);
        return await action(connection);
    }

    /// <summary>2 for what the user typed (a command's own ArgumentException, an invalid argument found locally), 1 for the rest.</summary>
    public static int ExitCode(Exception e) => e switch
    {
        _ when e.GetType() == typeof(ArgumentException) => 2,
        Stitching.Core.Errors.StitchingException { Kind: Stitching.Core.Errors.ErrorKind.InvalidArgument } => 2,
        AggregateException { InnerExceptions.Count: 1 } a => ExitCode(a.InnerExceptions[0]),
        _ => 1,
    };

    /// <summary>An error as the one line a user reads: a gRPC status and its detail, or the innermost message.</summary>
    public static string Sentence(Exception e) => e switch
    {
        RpcException r => $"{r.StatusCode}: {r.Status.Detail}",
        AggregateException { InnerExceptions.Count: 1 } a => Sentence(a.InnerExceptions[0]),
        TypeInitializationException { InnerException: { } inner } => Sentence(inner),
        System.Reflection.TargetInvocationException { InnerException: { } inner } => Sentence(inner),
        _ => e.Message.ReplaceLineEndings(" ").Trim(),
    };

    public async ValueTask DisposeAsync()
    {
        Channel.Dispose();
        if (_embedded is not null) await _embedded.DisposeAsync();
    }
}
