using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Stitching.Server;

/// <summary>
/// A private redis-server on a free loopback port, without persistence, owned by this process: the
/// embedded default's cache, and the real Redis the tests run against.
/// </summary>
public sealed class LocalRedis : IDisposable
{
    private readonly Process _process;

    private LocalRedis(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    public int Port { get; }
    public string Configuration => $"127.0.0.1:{Port}";
    public bool IsRunning => !_process.HasExited;

    /// <summary>Path of redis-server on PATH (or the usual Debian place), null when not installed.</summary>
    public static string? FindExecutable()
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/bin", "/usr/sbin", "/usr/local/bin"]);
        return dirs.Select(d => Path.Combine(d, "redis-server")).FirstOrDefault(File.Exists);
    }

    public static async Task<LocalRedis> StartAsync(int maxMemoryMb = 0, TimeSpan? timeout = null)
    {
        var exe = FindExecutable() ?? throw new InvalidOperationException(
            "redis-server is not installed; install it with 'apt-get install -y redis-server' or set REDIS_URL to a running Redis.");
        var port = FreePort();
        var args = new List<string> { "--port", port.ToString(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes", "--dir", Path.GetTempPath() };
        if (maxMemoryMb > 0) args.AddRange(["--maxmemory", $"{maxMemoryMb}mb", "--maxmemory-policy", "allkeys-lru"]);
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        var process = Process.Start(psi) ?? throw new InvalidOperationException("could not start redis-server");
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var redis = new LocalRedis(process, port);
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(10));
        while (DateTime.UtcNow < deadline)
        {
            if (process.HasExited) throw new InvalidOperationException($"redis-server exited at start with code {process.ExitCode}");
            if (await PingAsync(port)) return redis;
            await Task.Delay(50);
        }
        redis.Dispose();
        throw new TimeoutException($"redis-server did not answer PING on port {port} within the timeout");
    }

    /// <summary>Kills the server at once (SIGKILL), as a crash would.</summary>
    public void Kill()
    {
        if (_process.HasExited) return;
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit(5000);
    }

    public static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task<bool> PingAsync(int port)
    {
        try
        {
            using var client = new TcpClient();
            await client.ConnectAsync(IPAddress.Loopback, port);
            var stream = client.GetStream();
            await stream.WriteAsync("PING\r\n"u8.ToArray());
            var buffer = new byte[16];
            var n = await stream.ReadAsync(buffer);
            return Encoding.ASCII.GetString(buffer, 0, n).StartsWith("+PONG");
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
