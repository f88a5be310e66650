using System.Text.RegularExpressions;
using System.Xml.Linq;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Deploy;

/// <summary>
/// The container images as far as they can be checked without a Docker engine: what each Dockerfile documents and
/// builds agrees with the projects, with the other Dockerfiles, with deploy/README.md and with the build context.
/// </summary>
public partial class ImageTests
{
    private static readonly IReadOnlyList<Dockerfile> Dockerfiles = Dockerfile.All();

    /// <summary>The assembly a project builds: its AssemblyName, else its file name.</summary>
    internal static string AssemblyOf(string project) =>
        XDocument.Load(Path.Combine(Python.RepoRoot(), project)).Descendants("AssemblyName").FirstOrDefault()?.Value
        ?? Path.GetFileNameWithoutExtension(project);

    [Fact]
    public void There_is_a_Dockerfile_per_service_host_and_one_for_the_server_each_documenting_its_own_image_names()
    {
        // Every executable the repository ships as a host: the four services (Web SDK) and the CLI (stitch serve).
        var root = Python.RepoRoot();
        var hosts = Directory.GetFiles(Path.Combine(root, "services"), "*.csproj", SearchOption.AllDirectories)
            .Append(Path.Combine(root, "cli", "Stitching.Cli", "Stitching.Cli.csproj"))
            .Select(p => Path.GetRelativePath(root, p).Replace('\\', '/')).ToList();
        Assert.Equal(5, hosts.Count);
        foreach (var host in hosts)
            Assert.Contains(Dockerfiles, d => d.PublishProjects[0] == host);
        Assert.Equal(hosts.Count, Dockerfiles.Count);
        var names = Dockerfiles.SelectMany(d => d.Images).ToList();
        Assert.Equal(names.Distinct().Count(), names.Count);
        Assert.All(names, n => Assert.Matches("^stitching/[a-z]+$", n));
        // The sweep Jobs run the CLI image, which the server image is under its second name.
        Assert.Contains("stitching/cli", names);
    }

    [Fact]
    public void Each_image_runs_an_assembly_it_publishes_and_health_checks_it_with_the_cli_it_carries()
    {
        foreach (var d in Dockerfiles)
        {
            var assemblies = d.PublishProjects.Select(p => $"/app/{AssemblyOf(p)}.dll").ToList();
            Assert.All(d.PublishProjects, p => Assert.True(File.Exists(Path.Combine(Python.RepoRoot(), p)), $"{d.FileName} publishes {p}, which does not exist"));
            Assert.Equal("dotnet", d.Entrypoint[0]);
            Assert.Equal(assemblies[0], d.Entrypoint[1]);
            Assert.Equal(["dotnet", "/app/stitch.dll", "health", "--server"], d.Healthcheck.Take(4));
            Assert.Contains("/app/stitch.dll", assemblies);
            Assert.Equal(d.Exposed.Single(), new Uri(d.Healthcheck[4]).Port);
            // Non-root by number, so Kubernetes' runAsNonRoot can verify it.
            Assert.Matches("^[1-9][0-9]*:[1-9][0-9]*$", d.User);
        }
    }

    [Fact]
    public void One_build_argument_selects_the_torch_backend_and_its_runtime_base_in_every_Dockerfile()
    {
        foreach (var d in Dockerfiles)
        {
            Assert.Equal("cpu", d.ArgDefaults["TORCH_BACKEND"]);
            Assert.Contains("-p:TorchBackend=$TORCH_BACKEND", d.PublishArguments);
            var stages = d.Stages.Select(s => s.Stage).ToList();
            Assert.Contains("runtime-cpu", stages);
            Assert.Contains("runtime-cuda", stages);
            Assert.Equal("runtime-${TORCH_BACKEND}", d.Stages[^1].Base);
            Assert.Equal("${SDK_IMAGE}", d.Stages[0].Base);
            Assert.Matches(@"^mcr\.microsoft\.com/dotnet/sdk:10\.0-noble$", d.ArgDefaults["SDK_IMAGE"]);
            Assert.Matches(@"^mcr\.microsoft\.com/dotnet/aspnet:10\.0-noble$", d.ArgDefaults["ASPNET_IMAGE"]);
            Assert.Matches(@"^nvidia/cuda:12\.8\.\d+-runtime-ubuntu24\.04$", d.ArgDefaults["CUDA_IMAGE"]);
        }
        // The same publish everywhere, so a CI that builds all five shares one build of the libraries.
        Assert.Single(Dockerfiles.Select(d => string.Join(' ', d.PublishArguments)).Distinct());
        Assert.Single(Dockerfiles.Select(d => string.Join(' ', d.ArgDefaults.Where(kv => kv.Key != "NODE_IMAGE").Select(kv => $"{kv.Key}={kv.Value}").Order())).Distinct());
    }

    [Fact]
    public void The_readme_builds_every_image_under_exactly_the_names_its_Dockerfile_documents_for_cpu_and_cuda()
    {
        var readme = File.ReadAllText(Path.Combine(Python.RepoRoot(), "deploy", "README.md"));
        var builds = DockerBuild().Matches(readme).Select(m => m.Value).ToList();
        foreach (var d in Dockerfiles)
        {
            var mine = builds.Where(b => b.Contains($"-f deploy/docker/{d.FileName} ", StringComparison.Ordinal)).ToList();
            var cpu = mine.Where(b => !b.Contains("TORCH_BACKEND=cuda", StringComparison.Ordinal)).ToList();
            var cuda = mine.Where(b => b.Contains("--build-arg TORCH_BACKEND=cuda", StringComparison.Ordinal)).ToList();
            Assert.True(cpu.Count >= 1 && cuda.Count >= 1, $"deploy/README.md has no cpu and cuda `docker build -f deploy/docker/{d.FileName}` command");
            foreach (var b in cpu.Concat(cuda))
            {
                var tags = Tag().Matches(b).Select(m => m.Groups[1].Value).ToList();
                Assert.Equal(d.Images.Order(), tags.Select(Dockerfile.NameOf).Order());
                Assert.All(tags, t => Assert.Equal(cuda.Contains(b), Dockerfile.TagOf(t)!.EndsWith("-cuda", StringComparison.Ordinal)));
                Assert.EndsWith(" .", b.TrimEnd()); // the build context is the repository root
            }
        }
    }

    [Fact]
    public void The_build_context_leaves_out_host_build_outputs_installed_packages_and_the_repository_history()
    {
        var patterns = File.ReadAllLines(Path.Combine(Python.RepoRoot(), ".dockerignore")).Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        foreach (var required in new[] { "**/bin", "**/obj", "**/node_modules", ".git" })
            Assert.Contains(required, patterns);
        // ... but keeps everything a publish reads.
        foreach (var d in Dockerfiles)
            foreach (var needed in d.PublishProjects.Select(p => p.Split('/')[0]).Concat(["libs", "protos", "build"]).Distinct())
                Assert.DoesNotContain(needed, patterns);
    }

    [GeneratedRegex(@"docker build [^\n`]*")]
    private static partial Regex DockerBuild();

    [GeneratedRegex(@"-t (\S+)")]
    private static partial Regex Tag();
}
