using System.Diagnostics;

namespace Stitching.Tests.Fixtures;

/// <summary>Runs Debian's python3 (with numpy) as an independent implementation for interop checks.</summary>
public static class Python
{
    public const string Exe = "/usr/bin/python3";

    public static string Run(string script, params string[] args)
    {
        if (!File.Exists(Exe)) throw new InvalidOperationException("Interop tests need Debian's python3 with numpy: apt-get install -y python3-numpy.");
        var psi = new ProcessStartInfo(Exe) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-");
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(script);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(); throw new TimeoutException("python3 did not finish in 60 s"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"python3 failed ({p.ExitCode}): {stderr.Result}");
        return stdout.Result;
    }
}
