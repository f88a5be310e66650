using System.Collections.Concurrent;
using k8s;
using k8s.Models;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Deploy;

/// <summary>deploy/k8s as Kubernetes objects: kustomize's rendering of the base and each overlay, and the sweep Job files.</summary>
public static class Kustomize
{
    /// <summary>Everything under deploy/k8s that kustomize renders.</summary>
    public static readonly string[] Overlays = ["base", "overlays/local", "overlays/gpu"];

    public static TheoryData<string> OverlayData() => new(Overlays);

    private static readonly ConcurrentDictionary<string, IReadOnlyList<object>> Rendered = new();

    public static string K8sDir => Path.Combine(Python.RepoRoot(), "deploy", "k8s");

    /// <summary>kubectl kustomize deploy/k8s/OVERLAY, loaded with the KubernetesClient models, strictly (a field the API does not know fails), rendered once per run.</summary>
    public static IReadOnlyList<object> Render(string overlay) =>
        Rendered.GetOrAdd(overlay, o => KubernetesYaml.LoadAllFromString(Kubectl("kustomize", Path.Combine(K8sDir, o)), strict: true).ToList());

    /// <summary>The hand-written and CLI-rendered Jobs (and their ConfigMaps) of deploy/k8s/sweep, applied beside an overlay.</summary>
    public static IReadOnlyList<object> SweepObjects() =>
        Rendered.GetOrAdd("sweep", _ => Directory.GetFiles(Path.Combine(K8sDir, "sweep"), "*.yaml").Order(StringComparer.Ordinal)
            .SelectMany(f => KubernetesYaml.LoadAllFromString(File.ReadAllText(f), strict: true)).ToList());

    /// <summary>Every pod template: (kind, name, template) of the Deployments and Jobs among <paramref name="objects"/>.</summary>
    public static IEnumerable<(string Kind, string Name, V1PodTemplateSpec Template)> PodTemplates(IEnumerable<object> objects)
    {
        foreach (var o in objects)
        {
            if (o is V1Deployment d) yield return ("Deployment", d.Metadata.Name, d.Spec.Template);
            else if (o is V1Job j) yield return ("Job", j.Metadata.Name, j.Spec.Template);
            else if (o is V1StatefulSet s) yield return ("StatefulSet", s.Metadata.Name, s.Spec.Template);
            else if (o is V1DaemonSet ds) yield return ("DaemonSet", ds.Metadata.Name, ds.Spec.Template);
        }
    }

    /// <summary>Whether a label selector selects a set of labels (matchLabels and matchExpressions; null selects nothing).</summary>
    public static bool Selects(V1LabelSelector? selector, IDictionary<string, string>? labels)
    {
        if (selector is null) return false;
        labels ??= new Dictionary<string, string>();
        foreach (var (k, v) in selector.MatchLabels ?? new Dictionary<string, string>())
            if (!labels.TryGetValue(k, out var actual) || actual != v) return false;
        foreach (var e in selector.MatchExpressions ?? [])
        {
            var has = labels.TryGetValue(e.Key, out var value);
            var ok = e.OperatorProperty switch
            {
                "In" => has && e.Values.Contains(value!),
                "NotIn" => !has || !e.Values.Contains(value!),
                "Exists" => has,
                "DoesNotExist" => !has,
                _ => throw new InvalidOperationException($"unknown selector operator {e.OperatorProperty}"),
            };
            if (!ok) return false;
        }
        return true;
    }

    /// <summary>kubectl (Google Cloud SDK's or Debian's); these machines have it at /usr/bin/kubectl.</summary>
    public static string Kubectl(params string[] args)
    {
        var exe = new[] { "/usr/bin/kubectl", "/usr/local/bin/kubectl" }.FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException("kubectl is needed to render deploy/k8s (kubectl kustomize); install it (Debian: apt-get install -y kubernetes-client).");
        return Python.RunProgram(exe, args);
    }
}
