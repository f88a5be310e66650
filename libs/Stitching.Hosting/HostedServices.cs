namespace Stitching.Hosting;

/// <summary>The fully qualified gRPC names of the domain services this process hosts.</summary>
public sealed class HostedServices(IEnumerable<HostedServiceName> names)
{
    public IReadOnlyList<string> Names { get; } = names.Select(n => n.Name).Distinct().ToList();
}
