using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Grpc.Health.V1;
using Grpc.Net.Client;

namespace Stitching.Tests.Fixtures;

/// <summary>The stitch CLI built beside the tests, and `stitch serve` as a separate process that a test can kill -9.</summary>
public sealed class StitchCli : IDisposable
{
    /// <summary>stitch.dll of the same configuration as the tests (bin/{Debug|Release}/net10.0).</summary>
    public static string Dll()
    {
        var configuration = new DirectoryInfo(AppContext.BaseDirectory.TrimEnd(Path.DirectorySeparatorChar)).Parent!.Name;
        var dll = Path.Combine(Python.RepoRoot(), "cli", "Stitching.Cli", "bin", configuration, "net10.0", "stitch.dll");
        return File.Exists(dll) ? dll : throw new InvalidOperationException($"{dll} is missing; build the solution (dotnet build Stitching.sln) before the tests.");
    }

    private readonly Process _process;
    private readonly System.Collections.Concurrent.ConcurrentQueue<string> _log = new();

    /// <summary>What the server printed (stdout and stderr, in arrival order), for a failing test's output.</summary>
    public string Log => string.Join('\n', _log);

    private StitchCli(Process process, string address)
    {
        _process = process;
        Address = address;
        Channel = GrpcChannel.ForAddress(address);
    }

    public string Address { get; }
    public GrpcChannel Channel { get; }

    /// <summary>Starts `stitch serve` on a free loopback port over a store, without Redis, and waits until it serves.</summary>
    public static async Task<StitchCli> ServeAsync(string storeRoot, IReadOnlyDictionary<string, string>? environment = null, string? address = null)
    {
        if (address is null)
        {
            var listener = new TcpListener(IPAddress.Loopback, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            address = $"http://127.0.0.1:{port}";
        }
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false };
        foreach (var a in new[] { Dll(), "serve", "--url", address, "--no-redis", "--store", storeRoot }) psi.ArgumentList.Add(a);
        foreach (var (k, v) in environment ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        var process = Process.Start(psi)!;
        var cli = new StitchCli(process, address);
        process.OutputDataReceived += (_, e) => { if (e.Data is { } line) cli._log.Enqueue(line); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is { } line) cli._log.Enqueue(line); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var health = new Health.HealthClient(cli.Channel);
        for (var i = 0; i < 300; i++)
        {
            if (process.HasExited) throw new InvalidOperationException($"stitch serve exited with {process.ExitCode}");
            try
            {
                if ((await health.CheckAsync(new HealthCheckRequest())).Status == HealthCheckResponse.Types.ServingStatus.Serving) return cli;
            }
            catch (Grpc.Core.RpcException) { }
            await Task.Delay(100);
        }
        cli.Dispose();
        throw new TimeoutException("stitch serve did not start serving within 30 s");
    }

    /// <summary>SIGKILL: no shutdown code runs, exactly as when a node dies.</summary>
    public void KillHard()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    public void Dispose()
    {
        Channel.Dispose();
        if (!_process.HasExited) KillHard();
        _process.Dispose();
    }
}
