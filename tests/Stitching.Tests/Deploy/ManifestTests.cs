using k8s;
using k8s.Models;
using Stitching.Tests.Fixtures;

namespace Stitching.Tests.Deploy;

/// <summary>
/// deploy/k8s as a cluster would receive it: every overlay rendered by kustomize and loaded as Kubernetes objects, checked
/// against the Dockerfiles (images, entry points, users, ports), against each other (budgets, autoscalers, network
/// policies, Secrets) and, for the gpu overlay, against the GPU nodes it targets.
/// </summary>
public class ManifestTests
{
    private static readonly IReadOnlyList<Dockerfile> Dockerfiles = Dockerfile.All();

    private static IEnumerable<(string Where, string Workload, V1PodTemplateSpec Template)> Pods(string overlay) =>
        Kustomize.PodTemplates(Kustomize.Render(overlay)).Select(p => ($"{overlay}: {p.Kind} {p.Name}", p.Name, p.Template));

    private static IEnumerable<(string Where, string Workload, V1PodTemplateSpec Template)> SweepPods() =>
        Kustomize.PodTemplates(Kustomize.SweepObjects()).Select(p => ($"sweep: {p.Kind} {p.Name}", p.Name, p.Template));

    [Theory]
    [MemberData(nameof(Kustomize.OverlayData), MemberType = typeof(Kustomize))]
    public void Every_container_requests_and_limits_cpu_and_memory_within_its_limits(string overlay)
    {
        foreach (var (where, _, template) in Pods(overlay))
            foreach (var c in template.Spec.Containers.Concat(template.Spec.InitContainers ?? []))
                foreach (var resource in new[] { "cpu", "memory" })
                {
                    Assert.True(c.Resources?.Requests?.ContainsKey(resource) == true, $"{where} container {c.Name} requests no {resource}");
                    Assert.True(c.Resources?.Limits?.ContainsKey(resource) == true, $"{where} container {c.Name} has no {resource} limit");
                    Assert.True(c.Resources.Requests[resource].ToDecimal() <= c.Resources.Limits[resource].ToDecimal(), $"{where} container {c.Name} requests more {resource} than its limit");
                }
    }

    [Fact]
    public void The_sweep_jobs_request_cpu_and_memory_and_cap_their_memory()
    {
        // sweep-ci.yaml is `stitch sweep render`'s output (SweepTests keeps it equal), which sets no cpu limit: a Job's
        // client pod only waits on the eval service, so memory is the limit that matters here.
        foreach (var (where, _, template) in SweepPods())
            foreach (var c in template.Spec.Containers)
            {
                Assert.True(c.Resources?.Requests?.ContainsKey("cpu") == true && c.Resources.Requests.ContainsKey("memory"), $"{where} container {c.Name} requests no cpu or memory");
                Assert.True(c.Resources.Limits?.ContainsKey("memory") == true, $"{where} container {c.Name} has no memory limit");
            }
    }

    [Theory]
    [MemberData(nameof(Kustomize.OverlayData), MemberType = typeof(Kustomize))]
    public void Every_image_is_one_a_Dockerfile_builds_run_as_that_Dockerfile_runs_it_or_a_pinned_third_party_image(string overlay)
    {
        foreach (var (where, _, template) in Pods(overlay).Concat(SweepPods()))
            foreach (var c in template.Spec.Containers)
            {
                var name = Dockerfile.NameOf(c.Image);
                var dockerfile = Dockerfile.For(Dockerfiles, name);
                if (!name.StartsWith("stitching/", StringComparison.Ordinal))
                {
                    Assert.True(Dockerfile.TagOf(c.Image) is { } tag && tag != "latest", $"{where}: third-party image {c.Image} must name a version");
                    continue;
                }
                Assert.True(dockerfile is not null, $"{where}: no deploy/docker/*.Dockerfile documents {name} (label dev.stitching.images); they document {string.Join(", ", Dockerfiles.SelectMany(d => d.Images))}");
                // The container runs the image's own entry point (command given or not) as the image's own user.
                Assert.Equal(dockerfile!.Entrypoint, c.Command?.ToArray() ?? dockerfile.Entrypoint);
                Assert.Equal(dockerfile.User.Split(':')[0], (c.SecurityContext?.RunAsUser ?? template.Spec.SecurityContext?.RunAsUser)?.ToString());
                foreach (var port in c.Ports ?? [])
                    Assert.Contains(port.ContainerPort, dockerfile.Exposed);
            }
    }

    [Theory]
    [MemberData(nameof(Kustomize.OverlayData), MemberType = typeof(Kustomize))]
    public void Every_deployment_has_one_disruption_budget_that_still_lets_a_node_drain(string overlay)
    {
        var objects = Kustomize.Render(overlay);
        var budgets = objects.OfType<V1PodDisruptionBudget>().ToList();
        foreach (var d in objects.OfType<V1Deployment>())
        {
            var mine = budgets.Where(b => Kustomize.Selects(b.Spec.Selector, d.Spec.Template.Metadata.Labels)).ToList();
            Assert.True(mine.Count == 1, $"{overlay}: Deployment {d.Metadata.Name} has {mine.Count} PodDisruptionBudgets");
            // The fewest pods it runs: its replicas, or the minimum of the autoscaler that owns the count.
            var hpa = objects.OfType<V2HorizontalPodAutoscaler>().SingleOrDefault(h => h.Spec.ScaleTargetRef.Name == d.Metadata.Name);
            var fewest = d.Spec.Replicas ?? hpa?.Spec.MinReplicas ?? 1;
            var budget = mine[0].Spec;
            var evictable = budget.MaxUnavailable is { } max ? Count(max, fewest) : fewest - Count(budget.MinAvailable!, fewest);
            Assert.True(evictable >= 1, $"{overlay}: the budget of {d.Metadata.Name} allows no eviction at {fewest} replica(s), so a node drain would wait forever");
        }
    }

    private static int Count(IntOrString value, int replicas) =>
        value.Value.EndsWith('%') ? (int)Math.Ceiling(replicas * int.Parse(value.Value.TrimEnd('%')) / 100.0) : int.Parse(value.Value);

    [Theory]
    [MemberData(nameof(Kustomize.OverlayData), MemberType = typeof(Kustomize))]
    public void Autoscalers_scale_existing_deployments_whose_pods_may_run_side_by_side(string overlay)
    {
        var objects = Kustomize.Render(overlay);
        foreach (var hpa in objects.OfType<V2HorizontalPodAutoscaler>())
        {
            var target = hpa.Spec.ScaleTargetRef;
            Assert.Equal(("apps/v1", "Deployment"), (target.ApiVersion, target.Kind));
            var d = objects.OfType<V1Deployment>().SingleOrDefault(x => x.Metadata.Name == target.Name);
            Assert.True(d is not null, $"{overlay}: HorizontalPodAutoscaler {hpa.Metadata.Name} targets Deployment {target.Name}, which does not exist");
            Assert.InRange(hpa.Spec.MinReplicas ?? 1, 1, hpa.Spec.MaxReplicas);
            // The autoscaler owns the count (a fixed replicas would reset it on every apply), and a Recreate Deployment
            // is one whose pods must never overlap, which more than one replica would break.
            Assert.Null(d!.Spec.Replicas);
            Assert.NotEqual("Recreate", d.Spec.Strategy?.Type);
            foreach (var metric in hpa.Spec.Metrics.Where(m => m.Type == "Resource"))
                Assert.All(d.Spec.Template.Spec.Containers, c => Assert.True(c.Resources.Requests.ContainsKey(metric.Resource.Name), $"{target.Name} scales on {metric.Resource.Name} utilisation but requests none"));
        }
        // A Recreate Deployment runs its operations in-process and resumes them on start: none is autoscaled.
        foreach (var d in objects.OfType<V1Deployment>().Where(x => x.Spec.Strategy?.Type == "Recreate"))
            Assert.Equal(1, d.Spec.Replicas);
    }

    [Theory]
    [MemberData(nameof(Kustomize.OverlayData), MemberType = typeof(Kustomize))]
    public void Network_policies_admit_the_calls_the_configuration_makes_and_nothing_else(string overlay)
    {
        var objects = Kustomize.Render(overlay);
        var net = new NetworkPolicies(objects.OfType<V1NetworkPolicy>());
        var services = objects.OfType<V1Service>().ToList();
        var deployments = objects.OfType<V1Deployment>().ToList();
        Endpoint PodOf(V1PodTemplateSpec t, string name) => Endpoint.Pod(name, t.Metadata.Labels, t.Spec.Containers);
        var pods = deployments.ToDictionary(d => d.Metadata.Name, d => PodOf(d.Spec.Template, d.Metadata.Name));
        var jobs = Kustomize.PodTemplates(Kustomize.SweepObjects()).Select(j => (Pod: PodOf(j.Template, j.Name), Args: j.Template.Spec.Containers.Single().Args)).ToList();
        var hosts = deployments.Where(d => Dockerfile.NameOf(d.Spec.Template.Spec.Containers[0].Image).StartsWith("stitching/", StringComparison.Ordinal)).Select(d => pods[d.Metadata.Name]).ToList();
        Assert.NotEmpty(hosts);
        // The pods behind host:port, and the port they listen on (the Service's targetPort, by number or name).
        IEnumerable<(Endpoint Pod, int Port)> Behind(string host, int port)
        {
            var service = services.Single(s => s.Metadata.Name == host);
            var sp = service.Spec.Ports.Single(p => p.Port == port);
            foreach (var d in deployments.Where(d => Kustomize.Selects(new V1LabelSelector { MatchLabels = service.Spec.Selector }, d.Spec.Template.Metadata.Labels)))
            {
                var target = sp.TargetPort?.Value ?? port.ToString();
                yield return (pods[d.Metadata.Name], int.TryParse(target, out var n) ? n : pods[d.Metadata.Name].NamedPorts[target]);
            }
        }

        // Every address the shared environment gives the hosts (service-to-service gRPC, Redis, the collector) is reachable from every host.
        var env = objects.OfType<V1ConfigMap>().Single(c => c.Metadata.Name.StartsWith("stitching-env", StringComparison.Ordinal)).Data;
        var addresses = env.Where(kv => kv.Key.EndsWith("Address", StringComparison.Ordinal) || kv.Key == "OTEL_EXPORTER_OTLP_ENDPOINT").Select(kv => new Uri(kv.Value))
            .Append(new Uri("redis://" + env["REDIS_URL"])).ToList();
        Assert.Contains(addresses, a => a.Scheme == "redis");
        foreach (var address in addresses)
            foreach (var (pod, port) in Behind(address.Host, address.Port))
                foreach (var host in hosts)
                    Assert.True(net.Allows(host, pod, port), $"{overlay}: {host} cannot reach {address} ({pod}:{port})");

        // The sweep and extraction Jobs reach the service their --server names, and nothing behind it.
        foreach (var (job, args) in jobs)
        {
            var server = new Uri(args[args.IndexOf("--server") + 1]);
            foreach (var (pod, port) in Behind(server.Host, server.Port))
                Assert.True(net.Allows(job, pod, port), $"{overlay}: {job} cannot reach {server}");
            var redis = new Uri("redis://" + env["REDIS_URL"]);
            foreach (var (pod, port) in Behind(redis.Host, redis.Port))
                Assert.False(net.Allows(job, pod, port), $"{overlay}: {job} may reach Redis");
        }

        // A pod that is neither a stitching pod nor a labelled client reaches no port of any policed Service; a labelled client reaches the hosts.
        var stranger = Endpoint.Pod("stranger", new Dictionary<string, string> { ["app"] = "stranger" });
        var client = Endpoint.Pod("client", new Dictionary<string, string> { ["stitching/client"] = "true" });
        foreach (var service in services)
            foreach (var sp in service.Spec.Ports)
                foreach (var (pod, port) in Behind(service.Metadata.Name, sp.Port))
                {
                    Assert.False(net.Allows(stranger, pod, port), $"{overlay}: an unlabelled pod reaches {service.Metadata.Name}:{sp.Port}");
                    Assert.Equal(hosts.Contains(pod), net.Allows(client, pod, port));
                    // Only the Services' own ports are open: the next port that none of them routes to is not.
                    var exposed = services.SelectMany(s => s.Spec.Ports.SelectMany(p => Behind(s.Metadata.Name, p.Port))).Where(b => b.Pod == pod).Select(b => b.Port).ToHashSet();
                    var closed = Enumerable.Range(port + 1, 100).First(p => !exposed.Contains(p));
                    Assert.False(net.Allows(hosts[0], pod, closed), $"{overlay}: {pod} admits port {closed}, which no Service routes to");
                }

        // Every policy's ingress port is a port a Service routes to on the pods it selects.
        foreach (var policy in objects.OfType<V1NetworkPolicy>())
            foreach (var rule in policy.Spec.Ingress ?? [])
                foreach (var p in rule.Ports ?? [])
                    Assert.True(services.Any(s => deployments.Any(d => Kustomize.Selects(policy.Spec.PodSelector, d.Spec.Template.Metadata.Labels)
                            && Kustomize.Selects(new V1LabelSelector { MatchLabels = s.Spec.Selector }, d.Spec.Template.Metadata.Labels)
                            && s.Spec.Ports.Any(sp => Behind(s.Metadata.Name, sp.Port).Any(b => b.Port.ToString() == p.Port.Value)))),
                        $"{overlay}: NetworkPolicy {policy.Metadata.Name} admits port {p.Port.Value}, which no Service of its pods exposes");

        // Names resolve: every stitching pod may ask the cluster DNS.
        var dns = Endpoint.Pod("kube-dns", new Dictionary<string, string> { ["k8s-app"] = "kube-dns" }, ns: "kube-system");
        foreach (var pod in pods.Values.Concat(jobs.Select(j => j.Pod)))
            foreach (var protocol in new[] { "UDP", "TCP" })
                Assert.True(net.Allows(pod, dns, 53, protocol), $"{overlay}: {pod} cannot resolve names ({protocol} 53)");

        // Model downloads: the activations host reaches HTTPS outside the cluster; no other pod reaches the internet.
        var hub = Endpoint.External("18.239.50.16");
        foreach (var pod in pods.Values.Concat(jobs.Select(j => j.Pod)))
            Assert.Equal(pod.Name == "activations", net.Allows(pod, hub, 443));
        Assert.False(net.Allows(pods["activations"], Endpoint.External("10.1.2.3"), 443), $"{overlay}: activations reaches private addresses outside the policies");
    }

    [Theory]
    [MemberData(nameof(Kustomize.OverlayData), MemberType = typeof(Kustomize))]
    public void Secrets_the_pods_read_are_optional_and_the_template_defines_every_key(string overlay)
    {
        var template = KubernetesYaml.LoadAllFromString(File.ReadAllText(Path.Combine(Kustomize.K8sDir, "secrets.example.yaml")), strict: true).Cast<V1Secret>().ToList();
        var objects = Kustomize.Render(overlay);
        // No Secret comes out of kustomize: a placeholder token must never be applied.
        Assert.Empty(objects.OfType<V1Secret>());
        var read = new HashSet<(string Name, string Key)>();
        foreach (var (where, _, t) in Pods(overlay).Concat(SweepPods()))
        {
            foreach (var c in t.Spec.Containers)
            {
                foreach (var e in (c.Env ?? []).Where(e => e.ValueFrom?.SecretKeyRef is not null))
                {
                    var r = e.ValueFrom.SecretKeyRef;
                    Assert.True(r.Optional == true || objects.OfType<V1Secret>().Any(x => x.Metadata.Name == r.Name), $"{where}: {e.Name} needs Secret {r.Name}, which no manifest creates; mark it optional");
                    read.Add((r.Name, r.Key));
                }
                foreach (var s in (c.EnvFrom ?? []).Where(s => s.SecretRef is not null))
                    Assert.True(s.SecretRef.Optional == true, $"{where}: envFrom Secret {s.SecretRef.Name} is required");
            }
            foreach (var v in (t.Spec.Volumes ?? []).Where(v => v.Secret is not null))
                Assert.True(v.Secret.Optional == true, $"{where}: volume Secret {v.Secret.SecretName} is required");
        }
        foreach (var (name, key) in read)
            Assert.True(template.Any(s => s.Metadata.Name == name && s.StringData?.ContainsKey(key) == true), $"deploy/k8s/secrets.example.yaml lacks Secret {name} key {key}, which {overlay} reads");
        // ... and the template holds nothing the pods do not read (every overlay reads the same Secrets).
        Assert.Equal(template.SelectMany(s => s.StringData.Keys.Select(k => (s.Metadata.Name, k))).Order(), read.Order());
    }

    [Fact]
    public void The_gpu_overlay_puts_the_model_hosts_on_tolerated_gpu_nodes_with_the_cuda_images_and_the_others_stay_on_cpu()
    {
        const string gpu = "nvidia.com/gpu";
        foreach (var overlay in Kustomize.Overlays)
        {
            var withGpu = 0;
            foreach (var (where, _, t) in Pods(overlay))
            {
                var c = t.Spec.Containers.Single();
                var gpus = c.Resources?.Limits?.TryGetValue(gpu, out var q) == true ? q.ToInt32() : 0;
                var cuda = Dockerfile.TagOf(c.Image)?.EndsWith("-cuda", StringComparison.Ordinal) == true;
                // A CUDA image only where a GPU is, and every GPU pod on the CUDA image of a Dockerfile's image name.
                Assert.True(cuda == gpus > 0, $"{where}: image {c.Image} with {gpus} GPU(s)");
                if (gpus == 0) continue;
                withGpu++;
                Assert.NotNull(Dockerfile.For(Dockerfiles, Dockerfile.NameOf(c.Image)));
                Assert.Contains(c.Env, e => e.Name == "Stitching__Device" && e.Value == "cuda");
                Assert.NotEmpty(t.Spec.NodeSelector ?? new Dictionary<string, string>());
                // GPU node pools are tainted with the resource's name; the pod must tolerate that taint.
                Assert.True((t.Spec.Tolerations ?? []).Any(x => Tolerates(x, gpu, "present", "NoSchedule")), $"{where} requests {gpu} but does not tolerate the {gpu}:NoSchedule taint");
                var requested = c.Resources?.Requests is { } requests && requests.TryGetValue(gpu, out var r) ? r.ToInt32() : gpus;
                Assert.True(requested == gpus, $"{where}: a GPU request must equal the limit");
            }
            Assert.True(overlay == "overlays/gpu" ? withGpu > 0 : withGpu == 0, $"{overlay}: {withGpu} pods with GPUs");
        }
    }

    private static bool Tolerates(V1Toleration t, string key, string value, string effect) =>
        (string.IsNullOrEmpty(t.Key) ? t.OperatorProperty == "Exists" : t.Key == key)
        && (t.OperatorProperty == "Exists" || t.Value == value)
        && (string.IsNullOrEmpty(t.Effect) || t.Effect == effect);

    [Theory]
    [MemberData(nameof(Kustomize.OverlayData), MemberType = typeof(Kustomize))]
    public void Probes_and_services_reach_the_ports_the_containers_listen_on(string overlay)
    {
        var objects = Kustomize.Render(overlay);
        foreach (var d in objects.OfType<V1Deployment>())
        {
            var c = d.Spec.Template.Spec.Containers.Single();
            var ports = (c.Ports ?? []).ToList();
            foreach (var probe in new[] { c.StartupProbe, c.LivenessProbe, c.ReadinessProbe }.Where(p => p?.Grpc is not null))
                Assert.Contains(ports, p => p.ContainerPort == probe!.Grpc.Port);
            foreach (var s in objects.OfType<V1Service>().Where(s => Kustomize.Selects(new V1LabelSelector { MatchLabels = s.Spec.Selector }, d.Spec.Template.Metadata.Labels)))
                foreach (var sp in s.Spec.Ports)
                    Assert.Contains(ports, p => p.Name == sp.TargetPort?.Value || p.ContainerPort.ToString() == (sp.TargetPort?.Value ?? sp.Port.ToString()));
        }
    }
}
