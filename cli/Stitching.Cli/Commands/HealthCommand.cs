using System.CommandLine;
using System.Text.Json.Nodes;
using Grpc.Health.V1;
using Stitching.Contracts.Common.V1;

namespace Stitching.Cli.Commands;

/// <summary>stitch health: the standard gRPC health verdict per service, and the checks behind it.</summary>
public static class HealthCommand
{
    public static Command Create()
    {
        var command = new Command("health", "Show the server's health: overall and per service, with each check.") { };
        command.SetAction((parse, ct) => ServerConnection.RunAsync(parse, ct, async c =>
        {
            var health = new Health.HealthClient(c.Channel);
            var overall = await health.CheckAsync(new HealthCheckRequest(), cancellationToken: ct);
            var code = overall.Status == HealthCheckResponse.Types.ServingStatus.Serving ? 0 : 1;
            var result = new JsonObject { ["status"] = Status(overall), ["embedded"] = c.IsEmbedded };
            ServerInfo info;
            try { info = await new ServerInfoService.ServerInfoServiceClient(c.Channel).GetServerInfoAsync(new GetServerInfoRequest(), cancellationToken: ct); }
            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.Unauthenticated)
            {
                result["note"] = "services, checks and store need a token: --token or STITCHING_TOKEN";
                CliOutput.Print(parse, result, () => Console.WriteLine($"server {(c.IsEmbedded ? "(embedded) " : "")}: {Status(overall)}\n  ({result["note"]})"));
                return code;
            }
            var services = new JsonObject();
            foreach (var s in info.Services) services[s] = Status(await health.CheckAsync(new HealthCheckRequest { Service = s }, cancellationToken: ct));
            result["services"] = services;
            result["info"] = CliOutput.Node(info);
            CliOutput.Print(parse, result, () =>
            {
                Console.WriteLine($"server {(c.IsEmbedded ? "(embedded) " : "")}: {Status(overall)}");
                foreach (var (s, status) in services) Console.WriteLine($"  {s,-44} {status}");
                Console.WriteLine("checks:");
                foreach (var check in info.Checks)
                    Console.WriteLine($"  {check.Name,-8} {check.Status.ToString().ToUpperInvariant(),-10} {check.Description} ({check.DurationMs:F1} ms)");
                Console.WriteLine($"store: {info.StoreRoot}");
                Console.WriteLine($"torch: {info.TorchVersion} on {info.Device}, {info.TorchThreads} threads");
            });
            return code;
        }));
        return command;
    }

    private static string Status(HealthCheckResponse r) => r.Status.ToString().ToUpperInvariant();
}
