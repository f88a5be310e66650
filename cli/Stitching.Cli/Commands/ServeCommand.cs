using System.CommandLine;
using Microsoft.Extensions.Logging;
using Stitching.Server;

namespace Stitching.Cli.Commands;

/// <summary>stitch serve: the all-in-one host (all four services on one port) until Ctrl+C.</summary>
public static class ServeCommand
{
    public static Command Create()
    {
        var url = new Option<string>("--url") { Description = "Address to listen on.", DefaultValueFactory = _ => "http://127.0.0.1:50051" };
        var redis = new Option<string?>("--redis") { Description = "Redis to use (host:port). Default: $REDIS_URL, else a private redis-server when installed, else none." };
        var noRedis = new Option<bool>("--no-redis") { Description = "Run with the artifact store alone." };
        var command = new Command("serve", "Run all services in one process (the embedded default) until Ctrl+C.") { url, redis, noRedis };
        command.SetAction(async (parse, ct) =>
        {
            await using var server = await EmbeddedServer.StartAsync(new EmbeddedServerOptions
            {
                Url = parse.GetValue(url)!,
                RedisUrl = parse.GetValue(redis),
                StartLocalRedis = !parse.GetValue(noRedis),
                StoreRoot = parse.GetValue(ServerConnection.StoreOption),
                MinimumLogLevel = LogLevel.Information,
            }, ct);
            var options = server.Services.GetService(typeof(Microsoft.Extensions.Options.IOptions<Stitching.Hosting.StitchingOptions>)) as Microsoft.Extensions.Options.IOptions<Stitching.Hosting.StitchingOptions>;
            var store = Path.GetFullPath(options!.Value.StoreRoot);
            // Under --json the banner is one JSON line a supervisor can read (the address to connect to); the logs stay on stderr.
            CliOutput.Print(parse, new { address = server.Address, store, redis = server.RedisUrl, redis_note = server.RedisNote, local_redis = server.LocalRedis is not null }, () =>
            {
                Console.WriteLine($"stitch server listening on {server.Address}");
                Console.WriteLine($"  services: activations, stitch, sae, eval (+ operations, artifacts, health, reflection)");
                Console.WriteLine($"  store:    {store}");
                Console.WriteLine(server.RedisNote is null
                    ? $"  redis:    {server.RedisUrl}{(server.LocalRedis is not null ? " (private redis-server started for this process)" : "")}"
                    : $"  redis:    none: {server.RedisNote}");
                Console.WriteLine("Press Ctrl+C to stop.");
            });
            try { await Task.Delay(Timeout.Infinite, ct); }
            catch (OperationCanceledException) { }
            Console.Error.WriteLine("stopping");
            return 0;
        });
        return command;
    }
}
