using Stitching.Core.Errors;

namespace Stitching.Sae.Architectures;

/// <summary>The registry of SAE activations, by cfg.json name ("relu" is accepted for "standard").</summary>
public static class SaeArchitectures
{
    private static readonly Dictionary<string, ISaeArchitecture> ByName = new ISaeArchitecture[]
    {
        new TopK(), new BatchTopK(), new JumpRelu(), new StandardRelu(),
    }.ToDictionary(a => a.Name);

    public static IReadOnlyCollection<string> Names => ByName.Keys;

    public static ISaeArchitecture Get(string? name, string field)
    {
        var key = string.IsNullOrEmpty(name) ? "topk" : name.ToLowerInvariant() == "relu" ? "standard" : name.ToLowerInvariant();
        return ByName.TryGetValue(key, out var a) ? a
            : throw StitchingException.InvalidArgument(field, $"'{name}' is not a known SAE architecture; use one of {string.Join(", ", ByName.Keys)}.");
    }
}
