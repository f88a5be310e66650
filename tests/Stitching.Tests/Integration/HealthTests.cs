using Grpc.Core;
using Grpc.Health.V1;
using Grpc.Reflection.V1Alpha;
using Stitching.Contracts.Common.V1;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Integration;

[Trait("Category", "Integration")]
public class HealthTests : IAsyncLifetime
{
    private TestServer _server = null!;
    public async Task InitializeAsync() => _server = await TestServer.StartAsync();
    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Health_is_serving_overall_and_per_service_with_real_checks()
    {
        var health = new Health.HealthClient(_server.Channel);
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest())).Status);
        foreach (var service in new[] { "stitching.activations.v1.ActivationsService", "stitching.stitch.v1.StitchService", "stitching.sae.v1.SaeService", "stitching.eval.v1.EvalService" })
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new HealthCheckRequest { Service = service })).Status);
        var unknown = await Assert.ThrowsAsync<RpcException>(async () => await health.CheckAsync(new HealthCheckRequest { Service = "nope" }));
        Assert.Equal(StatusCode.NotFound, unknown.StatusCode);

        var info = await new ServerInfoService.ServerInfoServiceClient(_server.Channel).GetServerInfoAsync(new GetServerInfoRequest());
        Assert.Equal(["redis", "store"], info.Checks.Select(c => c.Name).Order());
        Assert.All(info.Checks, c => Assert.Equal(CheckStatus.Healthy, c.Status));
        Assert.Equal(4, info.Services.Count);
        Assert.Equal(_server.StoreRoot, info.StoreRoot);
    }

    [Fact]
    [System.Runtime.Versioning.SupportedOSPlatform("linux")]
    public async Task Unwritable_store_makes_health_not_serving()
    {
        File.SetUnixFileMode(Path.Combine(_server.StoreRoot, ".staging"), UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            if (Environment.UserName == "root")
            {
                // root writes anyway; make the probe folder a file instead so the write must fail.
                Directory.Delete(Path.Combine(_server.StoreRoot, ".staging"));
                File.WriteAllText(Path.Combine(_server.StoreRoot, ".staging"), "not a folder");
            }
            var status = (await new Health.HealthClient(_server.Channel).CheckAsync(new HealthCheckRequest())).Status;
            Assert.Equal(HealthCheckResponse.Types.ServingStatus.NotServing, status);
        }
        finally
        {
            if (File.Exists(Path.Combine(_server.StoreRoot, ".staging"))) File.Delete(Path.Combine(_server.StoreRoot, ".staging"));
            else File.SetUnixFileMode(Path.Combine(_server.StoreRoot, ".staging"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    [Fact]
    public async Task Reflection_lists_the_common_services()
    {
        var client = new Grpc.Reflection.V1Alpha.ServerReflection.ServerReflectionClient(_server.Channel);
        using var call = client.ServerReflectionInfo();
        await call.RequestStream.WriteAsync(new ServerReflectionRequest { ListServices = "" });
        await call.RequestStream.CompleteAsync();
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None));
        var names = call.ResponseStream.Current.ListServicesResponse.Service.Select(s => s.Name).ToList();
        Assert.Contains("stitching.common.v1.OperationsService", names);
        Assert.Contains("stitching.common.v1.ArtifactsService", names);
        Assert.Contains("stitching.common.v1.ServerInfoService", names);
        Assert.Contains("grpc.health.v1.Health", names);
    }
}
