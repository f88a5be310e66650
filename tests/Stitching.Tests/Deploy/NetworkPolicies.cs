using System.Net;
using k8s.Models;

namespace Stitching.Tests.Deploy;

/// <summary>One end of a connection: a pod (namespace, labels, named container ports) or an address outside the cluster.</summary>
public sealed record Endpoint(string Name, string? Namespace, IDictionary<string, string> Labels, IReadOnlyDictionary<string, int> NamedPorts, string? Ip = null)
{
    public const string AppNamespace = "stitching";

    public static Endpoint Pod(string name, IDictionary<string, string>? labels, IEnumerable<V1Container>? containers = null, string ns = AppNamespace) =>
        new(name, ns, labels ?? new Dictionary<string, string>(),
            (containers ?? []).SelectMany(c => c.Ports ?? []).Where(p => p.Name is not null).ToDictionary(p => p.Name, p => p.ContainerPort));

    public static Endpoint External(string ip) => new(ip, null, new Dictionary<string, string>(), new Dictionary<string, int>(), ip);

    public override string ToString() => Name;
}

/// <summary>
/// The NetworkPolicy semantics of networking.k8s.io/v1, for the policies of one namespace: a connection is allowed when
/// the source's egress and the destination's ingress both allow it (a pod no policy of a direction selects is open in
/// that direction; rules are a union). Namespaces carry the kubernetes.io/metadata.name label, as the API server sets.
/// </summary>
public sealed class NetworkPolicies(IEnumerable<V1NetworkPolicy> policies, string policyNamespace = Endpoint.AppNamespace)
{
    private readonly List<V1NetworkPolicy> _policies = policies.ToList();

    public bool Allows(Endpoint from, Endpoint to, int port, string protocol = "TCP") =>
        Direction(from, "Egress", p => p.Spec.Egress?.Select(r => ((IList<V1NetworkPolicyPeer>?)r.To, (IList<V1NetworkPolicyPort>?)r.Ports)), to, port, protocol)
        && Direction(to, "Ingress", p => p.Spec.Ingress?.Select(r => ((IList<V1NetworkPolicyPeer>?)r.FromProperty, (IList<V1NetworkPolicyPort>?)r.Ports)), from, port, protocol, destination: to);

    /// <summary>Whether the policies selecting <paramref name="subject"/> in <paramref name="type"/> admit the peer on the port.</summary>
    private bool Direction(Endpoint subject, string type, Func<V1NetworkPolicy, IEnumerable<(IList<V1NetworkPolicyPeer>? Peers, IList<V1NetworkPolicyPort>? Ports)>?> rules,
        Endpoint peer, int port, string protocol, Endpoint? destination = null)
    {
        if (subject.Namespace != policyNamespace) return true; // outside the cluster, or a namespace these policies do not govern
        var selecting = _policies.Where(p => Types(p).Contains(type) && Kustomize.Selects(p.Spec.PodSelector, subject.Labels)).ToList();
        if (selecting.Count == 0) return true;
        var target = destination ?? peer; // named ports resolve on the destination pod
        return selecting.Any(p => (rules(p) ?? []).Any(r =>
            (r.Peers is null || r.Peers.Count == 0 || r.Peers.Any(x => PeerMatches(x, peer)))
            && (r.Ports is null || r.Ports.Count == 0 || r.Ports.Any(x => PortMatches(x, target, port, protocol)))));
    }

    private static IList<string> Types(V1NetworkPolicy p) => p.Spec.PolicyTypes ?? (p.Spec.Egress is null ? ["Ingress"] : ["Ingress", "Egress"]);

    private bool PeerMatches(V1NetworkPolicyPeer peer, Endpoint e)
    {
        if (peer.IpBlock is { } block)
            return e.Ip is not null && InCidr(e.Ip, block.Cidr) && !(block.Except ?? []).Any(x => InCidr(e.Ip, x));
        if (e.Namespace is null) return false; // only ipBlocks match addresses outside the cluster
        var namespaceOk = peer.NamespaceSelector is null
            ? e.Namespace == policyNamespace
            : Kustomize.Selects(peer.NamespaceSelector, new Dictionary<string, string> { ["kubernetes.io/metadata.name"] = e.Namespace });
        return namespaceOk && (peer.PodSelector is null || Kustomize.Selects(peer.PodSelector, e.Labels));
    }

    private static bool PortMatches(V1NetworkPolicyPort rule, Endpoint destination, int port, string protocol)
    {
        if ((rule.Protocol ?? "TCP") != protocol) return false;
        if (rule.Port is null) return true;
        var first = int.TryParse(rule.Port.Value, out var number) ? number
            : destination.NamedPorts.TryGetValue(rule.Port.Value, out var named) ? named : -1;
        return rule.EndPort is { } end ? port >= first && port <= end : port == first;
    }

    private static bool InCidr(string ip, string cidr)
    {
        var (network, bits) = (IPAddress.Parse(cidr.Split('/')[0]), int.Parse(cidr.Split('/')[1]));
        var (a, b) = (IPAddress.Parse(ip).GetAddressBytes(), network.GetAddressBytes());
        if (a.Length != b.Length) return false;
        for (var i = 0; i < bits; i++)
            if ((a[i / 8] & (0x80 >> (i % 8))) != (b[i / 8] & (0x80 >> (i % 8)))) return false;
        return true;
    }
}
