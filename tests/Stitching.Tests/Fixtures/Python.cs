using System.Diagnostics;

namespace Stitching.Tests.Fixtures;

/// <summary>Runs Debian's python3 (with numpy) as an independent implementation for interop checks.</summary>
public static class Python
{
    public const string Exe = "/usr/bin/python3";

    /// <summary>A numpy reader of safetensors files (float64 arrays by name), written from the format's spec; prepend it to scripts.</summary>
    public const string SafetensorsReader = """
import json, struct, sys, glob, os
import numpy as np
def read(path):
    raw = open(path, 'rb').read()
    n = struct.unpack('<Q', raw[:8])[0]
    header = json.loads(raw[8:8 + n]); data = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == '__metadata__': continue
        b, end = e['data_offsets']
        dt = {'F32': '<f4', 'U8': 'u1', 'I32': '<i4'}[e['dtype']]
        out[name] = np.frombuffer(data[b:end], dtype=dt).reshape(e['shape']).astype(np.float64)
    return out
""";

    public static string Run(string script, params string[] args) => Execute(Exe, script, ["-", .. args]);

    /// <summary>Runs a program (a script file, bash...) and returns its stdout; fails on a non-zero exit.</summary>
    public static string RunProgram(string program, params string[] args) => Execute(program, "", args);

    /// <summary>The repository root (holds Stitching.sln), found upwards from the test binaries.</summary>
    public static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Stitching.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Stitching.sln not found above the test binaries");
    }

    private static string Execute(string program, string stdin, IEnumerable<string> args)
    {
        if (!File.Exists(Exe)) throw new InvalidOperationException("Interop tests need Debian's python3 with numpy: apt-get install -y python3-numpy.");
        var psi = new ProcessStartInfo(program) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        p.StandardInput.Write(stdin);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(60_000)) { p.Kill(); throw new TimeoutException($"{program} did not finish in 60 s"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"{program} failed ({p.ExitCode}): {stderr.Result}\n{stdout.Result}");
        return stdout.Result;
    }
}
