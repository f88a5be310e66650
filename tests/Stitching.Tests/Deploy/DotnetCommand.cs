using System.Diagnostics;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Deploy;

/// <summary>dotnet as a plain command line in the repository root runs it: MSBuild's variables of the test run removed, output captured.</summary>
public static class DotnetCommand
{
    public static async Task<(int Code, string Output)> RunAsync(IEnumerable<string> args, TimeSpan timeout)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = Python.RepoRoot() };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList()) psi.Environment.Remove(key);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(timeout);
        try { await p.WaitForExitAsync(cts.Token); }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet {string.Join(' ', args)} did not finish within {timeout}:\n{await stdout}\n{await stderr}");
        }
        return (p.ExitCode, (await stdout) + (await stderr));
    }
}
