using System.Diagnostics;
using System.Text;
using Stitching.Tests.Fixtures;
using Xunit.Abstractions;

namespace Stitching.Tests.Integration;

/// <summary>A venv, a pip install and a minute of pytest against a server of its own: it runs alone, after the parallel
/// tests, so that it neither slows the others' time-limited Python runs nor is slowed by them.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class PythonPackageCollection
{
    public const string Name = "python package (runs alone)";
}

/// <summary>
/// The Python package as a user gets it: `python3 -m venv --system-site-packages v && v/bin/pip install ./clients/python`
/// (offline: the build backend is in the tree and Debian's grpcio, protobuf and numpy satisfy the dependencies), then
/// its pytest suite (clients/python/tests) with the venv's python against `stitch serve` as its own process.
/// </summary>
[Collection(PythonPackageCollection.Name)]
[Trait("Category", "Integration")]
public class PythonPackageTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Package_installs_offline_into_a_venv_and_its_pytest_suite_passes_against_stitch_serve()
    {
        using var dir = new TempDir("py-package");
        var root = Python.RepoRoot();
        var venv = Path.Combine(dir.Path, "v");
        var quiet = new Dictionary<string, string> { ["PIP_DISABLE_PIP_VERSION_CHECK"] = "1", ["PIP_NO_INPUT"] = "1", ["PYTHONDONTWRITEBYTECODE"] = "1" };
        Run(Python.Exe, ["-m", "venv", "--system-site-packages", venv], root, quiet, TimeSpan.FromMinutes(2));
        var install = Run(Path.Combine(venv, "bin", "pip"), ["install", "./clients/python"], root, quiet, TimeSpan.FromMinutes(5));
        Assert.Contains("Successfully installed stitching-client-", install);

        var models = Directory.CreateDirectory(Path.Combine(dir.Path, "models")).FullName;
        var allowed = Directory.CreateDirectory(Path.Combine(dir.Path, "allowed")).FullName;
        using var server = await StitchCli.ServeAsync(Path.Combine(dir.Path, "store"), new Dictionary<string, string>
        {
            ["Stitching__ModelsRoot"] = models, ["Stitching__AllowedRoots__0"] = allowed,
        });
        var env = new Dictionary<string, string>(quiet)
        {
            ["STITCHING_ADDRESS"] = server.Address, ["STITCHING_MODELS_ROOT"] = models, ["STITCHING_ALLOWED_ROOT"] = allowed,
            ["STITCHING_REQUIRE_LIVE"] = "1", ["STITCHING_EXPECT_INSTALLED"] = "1", ["PYTHON"] = Python.Exe,
        };
        // From the repository root, so `import stitching` finds the installed package, not the source folder.
        var pytest = Run(Path.Combine(venv, "bin", "python"), ["-m", "pytest", "-p", "no:cacheprovider", "-rs", "-q", "clients/python/tests"],
            root, env, TimeSpan.FromMinutes(5));
        Assert.Matches(@"\d+ passed", pytest);
        Assert.DoesNotContain("skipped", pytest);
    }

    [Fact]
    public async Task The_README_Python_example_runs_verbatim_against_stitch_serve_on_its_default_address()
    {
        var readme = File.ReadAllText(Path.Combine(Python.RepoRoot(), "README.md"));
        var section = System.Text.RegularExpressions.Regex.Match(readme, @"^## [^\n]*\bPython\b[^\n]*\n(.*?)(?=^## )", System.Text.RegularExpressions.RegexOptions.Multiline | System.Text.RegularExpressions.RegexOptions.Singleline);
        Assert.True(section.Success, "README.md has no '## ' section with the word Python");
        var block = System.Text.RegularExpressions.Regex.Match(section.Groups[1].Value, "```python\n(.*?)```", System.Text.RegularExpressions.RegexOptions.Singleline);
        Assert.True(block.Success, "the README's Python section has no ```python block");
        Assert.InRange(block.Groups[1].Value.Trim().Split('\n').Length, 1, 12);
        using var dir = new TempDir("readme-python");
        // `./stitch serve` with no flags listens on 127.0.0.1:50051 (ServeCommand's default), which the example names.
        using var server = await StitchCli.ServeAsync(Path.Combine(dir.Path, "store"), address: "http://127.0.0.1:50051");
        var script = Path.Combine(dir.Path, "example.py");
        File.WriteAllText(script, block.Groups[1].Value);
        var printed = Run(Python.Exe, [script], dir.Path, new Dictionary<string, string> { ["PYTHONPATH"] = Path.Combine(Python.RepoRoot(), "clients", "python"), ["PYTHONDONTWRITEBYTECODE"] = "1" }, TimeSpan.FromMinutes(2));
        // b is exactly affine in a, so the least-squares stitch reconstructs it: FVU near zero.
        var fvu = double.Parse(System.Text.RegularExpressions.Regex.Match(printed, @"FVU of the stitch A -> B: (\S+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(fvu, 0, 1e-4);
        Assert.Contains("(2, 96)", printed);
    }

    /// <summary>Runs a program to its end, its output (stdout and stderr) written to the test log; fails on a non-zero exit.</summary>
    private string Run(string program, string[] args, string workingDirectory, IReadOnlyDictionary<string, string> env, TimeSpan limit)
    {
        var psi = new ProcessStartInfo(program) { WorkingDirectory = workingDirectory, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (k, v) in env) psi.Environment[k] = v;
        var text = new StringBuilder();
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (text) text.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var finished = p.WaitForExit(limit);
        if (!finished) p.Kill(entireProcessTree: true);
        p.WaitForExit();
        string all;
        lock (text) all = text.ToString();
        output.WriteLine($"$ {program} {string.Join(' ', args)}\n{all}");
        Assert.True(finished, $"{Path.GetFileName(program)} {string.Join(' ', args)} did not finish within {limit}");
        Assert.True(p.ExitCode == 0, $"{Path.GetFileName(program)} {string.Join(' ', args)} exited {p.ExitCode}:\n{all}");
        return all;
    }
}
