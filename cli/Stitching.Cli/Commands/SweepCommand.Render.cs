using System.CommandLine;
using System.Text.Json.Nodes;
using k8s;
using k8s.Models;
using Stitching.Eval.Experiments;

namespace Stitching.Cli.Commands;

/// <summary>stitch sweep render: the sweep as a Kubernetes Indexed Job (one pod per point) and the ConfigMap holding its file.</summary>
public static partial class SweepCommand
{
    private static Command Render()
    {
        var image = new Option<string>("--image") { Description = "Image with the stitch CLI (deploy/README).", Required = true };
        var ns = new Option<string?>("--namespace") { Description = "Namespace of the Job and ConfigMap (default: the kubectl context's)." };
        var server = new Option<string>("--eval-address") { Description = "The eval service in the cluster (default http://eval:50051, deploy/k8s).", DefaultValueFactory = _ => "http://eval:50051" };
        var output = new Option<string?>("--out") { Description = "Write the manifests here instead of stdout." };
        var command = new Command("render", "Emit a Kubernetes Indexed Job (one pod per point) and a ConfigMap holding the sweep file (YAML; --json: one v1 List).") { SpecArgument, image, ns, server, output };
        command.SetAction(parse =>
        {
            var file = parse.GetValue(SpecArgument)!;
            var sweep = Load(parse);
            var (configMap, job) = JobObjects(sweep, File.ReadAllText(file), parse.GetValue(image)!, parse.GetValue(ns), parse.GetValue(server)!);
            var manifests = CliOutput.Json(parse) ? ListJson(configMap, job) + "\n" : RenderJob(sweep, configMap, job);
            if (parse.GetValue(output) is { } path) File.WriteAllText(path, manifests);
            else Console.Write(manifests);
            return 0;
        });
        return command;
    }

    /// <summary>The manifests as YAML, with a comment naming the sweep.</summary>
    public static string RenderJob(Sweep sweep, V1ConfigMap configMap, V1Job job) =>
        $"# stitch sweep render: {sweep.Points.Count} points of {sweep.Name}; pod i runs point i (stitch sweep list shows them).\n" +
        KubernetesYaml.Serialize(configMap).TrimEnd() + "\n---\n" + KubernetesYaml.Serialize(job).TrimEnd() + "\n";

    /// <summary>The manifests as one JSON document kubectl applies: a v1 List of the ConfigMap and the Job.</summary>
    private static string ListJson(V1ConfigMap configMap, V1Job job) => new JsonObject
    {
        ["apiVersion"] = "v1", ["kind"] = "List",
        ["items"] = new JsonArray(JsonNode.Parse(KubernetesJson.Serialize(configMap)), JsonNode.Parse(KubernetesJson.Serialize(job))),
    }.ToJsonString();

    /// <summary>The ConfigMap (the sweep file as given) and the Indexed Job whose pod i runs `stitch sweep point` for point i against the eval service.</summary>
    public static (V1ConfigMap ConfigMap, V1Job Job) JobObjects(Sweep sweep, string sweepFile, string image, string? ns, string evalAddress)
    {
        var name = "sweep-" + Slug(sweep.Name);
        if (name.Length > 52) name = name[..52].TrimEnd('-'); // Job names get a pod suffix; keep the total under 63
        var labels = new Dictionary<string, string> { ["app.kubernetes.io/part-of"] = "stitching", ["app.kubernetes.io/component"] = "sweep", ["stitching.dev/sweep"] = name };
        var configMap = new V1ConfigMap
        {
            ApiVersion = "v1", Kind = "ConfigMap",
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels },
            Data = new Dictionary<string, string> { ["sweep.yaml"] = sweepFile },
        };
        var job = new V1Job
        {
            ApiVersion = "batch/v1", Kind = "Job",
            Metadata = new V1ObjectMeta { Name = name, NamespaceProperty = ns, Labels = labels },
            Spec = new V1JobSpec
            {
                CompletionMode = "Indexed", Completions = sweep.Points.Count, Parallelism = Math.Min(sweep.Parallelism, sweep.Points.Count),
                BackoffLimitPerIndex = 2, MaxFailedIndexes = sweep.Points.Count, PodFailurePolicy = null,
                Template = new V1PodTemplateSpec
                {
                    Metadata = new V1ObjectMeta { Labels = labels },
                    Spec = new V1PodSpec
                    {
                        RestartPolicy = "Never",
                        SecurityContext = new V1PodSecurityContext { RunAsNonRoot = true, RunAsUser = 10001, RunAsGroup = 10001, SeccompProfile = new V1SeccompProfile { Type = "RuntimeDefault" } },
                        Containers =
                        [
                            new V1Container
                            {
                                Name = "point", Image = image,
                                Command = ["dotnet", "/app/stitch.dll"],
                                Args = ["sweep", "point", "/sweep/sweep.yaml", "--server", evalAddress],
                                Env =
                                [
                                    new V1EnvVar { Name = "STITCHING_TOKEN", ValueFrom = new V1EnvVarSource { SecretKeyRef = new V1SecretKeySelector { Name = "stitching-auth", Key = "client-token", Optional = true } } },
                                ],
                                VolumeMounts = [new V1VolumeMount { Name = "sweep", MountPath = "/sweep", ReadOnlyProperty = true }],
                                Resources = new V1ResourceRequirements
                                {
                                    Requests = new Dictionary<string, ResourceQuantity> { ["cpu"] = new("100m"), ["memory"] = new("256Mi") },
                                    Limits = new Dictionary<string, ResourceQuantity> { ["memory"] = new("1Gi") },
                                },
                                SecurityContext = new V1SecurityContext { AllowPrivilegeEscalation = false, ReadOnlyRootFilesystem = true, Capabilities = new V1Capabilities { Drop = ["ALL"] } },
                            },
                        ],
                        Volumes = [new V1Volume { Name = "sweep", ConfigMap = new V1ConfigMapVolumeSource { Name = name } }],
                    },
                },
            },
        };
        return (configMap, job);
    }
}
