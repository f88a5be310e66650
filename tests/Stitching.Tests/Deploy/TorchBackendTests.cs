using System.Text.Json.Nodes;
using System.Xml.Linq;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Deploy;

/// <summary>
/// build/TorchBackend.targets: -p:TorchBackend=cuda swaps TorchSharp-cpu for TorchSharp-cuda-linux, and nothing else
/// changes. Checked by MSBuild evaluation only (the CUDA package is not on this workplace's NuGet mirror, so it cannot restore here).
/// </summary>
public class TorchBackendTests
{
    /// <summary>The projects that reference TorchSharp-cpu themselves (the others get it through them).</summary>
    private static List<string> TorchProjects() =>
        Directory.GetFiles(Python.RepoRoot(), "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Split(Path.DirectorySeparatorChar).Any(s => s is "bin" or "obj"))
            .Where(p => XDocument.Load(p).Descendants("PackageReference").Any(r => (string?)r.Attribute("Include") == "TorchSharp-cpu"))
            .ToList();

    [Fact]
    public async Task Cuda_swaps_TorchSharp_cpu_for_the_cuda_package_of_the_same_version_and_the_default_build_keeps_cpu()
    {
        var projects = TorchProjects();
        Assert.NotEmpty(projects);
        foreach (var project in projects)
        {
            var plain = await PackageReferences(project);
            Assert.Contains("TorchSharp-cpu", plain);
            Assert.Equal(plain, await PackageReferences(project, "-p:TorchBackend=cpu"));
            var cuda = await PackageReferences(project, "-p:TorchBackend=cuda");
            Assert.Contains("TorchSharp-cuda-linux", cuda);
            Assert.DoesNotContain("TorchSharp-cpu", cuda);
            // Everything else stays as it is.
            Assert.Equal(plain.Where(p => p != "TorchSharp-cpu").Order(), cuda.Where(p => p != "TorchSharp-cuda-linux").Order());
        }
        var versions = XDocument.Load(Path.Combine(Python.RepoRoot(), "Directory.Packages.props")).Descendants("PackageVersion")
            .ToDictionary(v => (string)v.Attribute("Include")!, v => (string)v.Attribute("Version")!);
        Assert.Equal(versions["TorchSharp-cpu"], versions["TorchSharp-cuda-linux"]);
    }

    [Fact]
    public async Task A_backend_the_build_does_not_know_is_an_error_that_names_the_choices()
    {
        var (code, output) = await DotnetCommand.RunAsync(["msbuild", TorchProjects()[0], "-t:StitchingCheckTorchBackend", "-p:TorchBackend=rocm", "-nologo"], TimeSpan.FromMinutes(2));
        Assert.NotEqual(0, code);
        Assert.Contains("TorchBackend=rocm", output);
        Assert.Contains("cpu (the default) or cuda", output);
    }

    private static async Task<List<string>> PackageReferences(string project, params string[] properties)
    {
        var (code, output) = await DotnetCommand.RunAsync(["msbuild", project, "-getItem:PackageReference", "-nologo", .. properties], TimeSpan.FromMinutes(2));
        Assert.True(code == 0, output);
        return JsonNode.Parse(output)!["Items"]!["PackageReference"]!.AsArray().Select(i => i!["Identity"]!.GetValue<string>()).ToList();
    }
}
