using System.CommandLine;
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
            Console.WriteLine($"server {(c.IsEmbedded ? "(embedded) " : "")}: {overall.Status.ToString().ToUpperInvariant()}");
            ServerInfo info;
            try { info = await new ServerInfoService.ServerInfoServiceClient(c.Channel).GetServerInfoAsync(new GetServerInfoRequest(), cancellationToken: ct); }
            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.Unauthenticated)
            {
                Console.WriteLine("  (services, checks and store need a token: --token or STITCHING_TOKEN)");
                return overall.Status == HealthCheckResponse.Types.ServingStatus.Serving ? 0 : 1;
            }
            foreach (var s in info.Services)
            {
                var r = await health.CheckAsync(new HealthCheckRequest { Service = s }, cancellationToken: ct);
                Console.WriteLine($"  {s,-44} {r.Status.ToString().ToUpperInvariant()}");
            }
            Console.WriteLine("checks:");
            foreach (var check in info.Checks)
                Console.WriteLine($"  {check.Name,-8} {check.Status.ToString().ToUpperInvariant(),-10} {check.Description} ({check.DurationMs:F1} ms)");
            Console.WriteLine($"store: {info.StoreRoot}");
            Console.WriteLine($"torch: {info.TorchVersion} on {info.Device}, {info.TorchThreads} threads");
            return overall.Status == HealthCheckResponse.Types.ServingStatus.Serving ? 0 : 1;
        }));
        return command;
    }
}
