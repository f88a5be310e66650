using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Grpc.Health.V1;
using Grpc.Net.Client;
using k8s.Models;
using Stitching.Tests.Fixtures;
using Xunit.Abstractions;

namespace Stitching.Tests.Deploy;

/// <summary>Publishing is CPU- and disk-heavy (a Release build of every project, ~2.5 GB of output): it runs alone, after the parallel tests.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PublishCollection
{
    public const string Name = "publish (runs alone)";
}

/// <summary>
/// What the images' build stages do, without Docker: every Dockerfile's `dotnet publish` (its own arguments, the default
/// cpu backend), each project into its own folder, with bin/obj/publish under a temporary --artifacts-path so the
/// repository's own outputs are never touched. Then each image's entry point starts from the published folder and
/// answers gRPC health (overall and, per Deployment that runs the image, its readiness service), and the image's
/// HEALTHCHECK command, run with the published CLI, exits 0.
/// </summary>
[Collection(PublishCollection.Name)]
[Trait("Category", "Integration")]
public class PublishTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Every_image_publishes_and_its_entry_point_serves_grpc_health_and_passes_its_HEALTHCHECK()
    {
        using var dir = new TempDir("publish");
        var dockerfiles = Dockerfile.All();
        var arguments = dockerfiles.Select(d => d.PublishArgumentsWithDefaults()).First();
        var projects = dockerfiles.SelectMany(d => d.PublishProjects).Distinct().ToList();
        var published = new Dictionary<string, string>();
        var total = Stopwatch.StartNew();
        foreach (var project in projects)
        {
            var watch = Stopwatch.StartNew();
            var folder = Path.Combine(dir.Path, "app", Path.GetFileNameWithoutExtension(project));
            var (code, log) = await DotnetCommand.RunAsync(["publish", Path.Combine(Python.RepoRoot(), project), .. arguments,
                "--artifacts-path", Path.Combine(dir.Path, "artifacts"), "-o", folder, "--disable-build-servers", "--nologo", "-v:q", "-clp:ErrorsOnly"], TimeSpan.FromMinutes(10));
            Assert.True(code == 0, $"dotnet publish {project} {string.Join(' ', arguments)} failed ({code}):\n{log}");
            published[project] = folder;
            output.WriteLine($"published {project} in {watch.Elapsed.TotalSeconds:F0} s");
        }
        output.WriteLine($"published {projects.Count} projects in {total.Elapsed.TotalSeconds:F0} s");

        // Readiness services the Deployments of each image ask for (base: the images all overlays run).
        var deployments = Kustomize.Render("base").OfType<V1Deployment>().ToList();
        var readiness = deployments.ToDictionary(d => d.Metadata.Name, d => d.Spec.Template.Spec.Containers.Single().ReadinessProbe?.Grpc?.Service);
        var cli = published[dockerfiles.SelectMany(d => d.PublishProjects).First(p => ImageTests.AssemblyOf(p) == "stitch")];

        var started = new List<Host>();
        try
        {
            foreach (var d in dockerfiles)
            {
                var port = FreePort();
                var folder = published[d.PublishProjects[0]];
                // The entry point and default command, with /app as the published folder and loopback for the address.
                var args = d.Entrypoint.Skip(1).Concat(d.Cmd).Select(a => a.Replace("/app/", folder + "/")).Select(a => a.Replace("http://0.0.0.0:50051", $"http://127.0.0.1:{port}")).ToList();
                var store = Path.Combine(dir.Path, "store-" + Path.GetFileNameWithoutExtension(d.FileName));
                if (args.Contains("serve")) args.AddRange(["--no-redis", "--store", store]);
                var services = deployments.Where(x => d.Images.Contains(Dockerfile.NameOf(x.Spec.Template.Spec.Containers.Single().Image))).Select(x => readiness[x.Metadata.Name]).ToList();
                // The all-in-one server answers for every service's name.
                if (services.Count == 0) services = readiness.Values.ToList();
                started.Add(Host.Start(d, args, port, store, services.OfType<string>().ToList()));
            }
            await Task.WhenAll(started.Select(h => h.WaitServingAsync()));
            foreach (var h in started)
            {
                // The image's HEALTHCHECK, with the published CLI as /app/stitch.dll and the host's port for 50051.
                var check = h.Dockerfile.Healthcheck.Skip(1).Select(a => a.Replace("/app/", cli + "/").Replace(":50051", $":{h.Port}")).ToList();
                var (code, log) = await DotnetCommand.RunAsync(check, TimeSpan.FromMinutes(1));
                output.WriteLine($"{h.Dockerfile.FileName}: served after {h.ServingAfter.TotalSeconds:F1} s; HEALTHCHECK exit {code}\n{log}");
                Assert.True(code == 0, $"{h.Dockerfile.FileName}: HEALTHCHECK `{string.Join(' ', h.Dockerfile.Healthcheck)}` exited {code}:\n{log}");
            }
        }
        finally
        {
            foreach (var h in started) h.Dispose();
        }
    }

    private static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>One published entry point running as its image would, on a loopback port, over its own store.</summary>
    private sealed class Host : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _log = new();
        private readonly IReadOnlyList<string> _services;
        private readonly GrpcChannel _channel;

        private Host(Dockerfile dockerfile, Process process, int port, IReadOnlyList<string> services)
        {
            Dockerfile = dockerfile;
            _process = process;
            Port = port;
            _services = services;
            _channel = GrpcChannel.ForAddress($"http://127.0.0.1:{port}");
        }

        public Dockerfile Dockerfile { get; }
        public int Port { get; }
        public TimeSpan ServingAfter { get; private set; }

        public static Host Start(Dockerfile d, IEnumerable<string> args, int port, string store, IReadOnlyList<string> services)
        {
            var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
            foreach (var a in args) psi.ArgumentList.Add(a);
            // The image's environment, on loopback: nothing of the test run's own configuration leaks in.
            foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("Stitching__", StringComparison.Ordinal) || k.StartsWith("OTEL_", StringComparison.Ordinal) || k.StartsWith("ASPNETCORE_", StringComparison.Ordinal)).ToList())
                psi.Environment.Remove(key);
            foreach (var key in new[] { "REDIS_URL", "STITCHING_AUTH_TOKENS", "STITCHING_TOKEN" }) psi.Environment.Remove(key);
            psi.Environment["ASPNETCORE_URLS"] = $"http://127.0.0.1:{port}";
            psi.Environment["STITCHING_STORE"] = store;
            var host = new Host(d, Process.Start(psi)!, port, services);
            host._process.OutputDataReceived += (_, e) => { lock (host._log) host._log.AppendLine(e.Data); };
            host._process.ErrorDataReceived += (_, e) => { lock (host._log) host._log.AppendLine(e.Data); };
            host._process.BeginOutputReadLine();
            host._process.BeginErrorReadLine();
            return host;
        }

        /// <summary>Waits (60 s at most) until the overall status and every expected service's status are SERVING.</summary>
        public async Task WaitServingAsync()
        {
            var health = new Health.HealthClient(_channel);
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed < TimeSpan.FromSeconds(60))
            {
                if (_process.HasExited) break;
                try
                {
                    var all = true;
                    foreach (var service in _services.Prepend(""))
                        all &= (await health.CheckAsync(new HealthCheckRequest { Service = service })).Status == HealthCheckResponse.Types.ServingStatus.Serving;
                    if (all) { ServingAfter = watch.Elapsed; return; }
                }
                catch (Grpc.Core.RpcException) { }
                await Task.Delay(200);
            }
            string log;
            lock (_log) log = _log.ToString();
            throw new Xunit.Sdk.XunitException($"{Dockerfile.FileName}: `dotnet {string.Join(' ', _process.StartInfo.ArgumentList)}` did not serve {string.Join(", ", _services.Prepend("(overall)"))} within 60 s{(_process.HasExited ? $" (exited {_process.ExitCode})" : "")}:\n{log}");
        }

        public void Dispose()
        {
            _channel.Dispose();
            if (!_process.HasExited) { _process.Kill(entireProcessTree: true); _process.WaitForExit(); }
            _process.Dispose();
        }
    }
}
