using System.Text.Json;
using Stitching.Zoo.Training;

namespace Stitching.Zoo.Family;

/// <summary>One family member as `stitch zoo list` shows it.</summary>
public sealed record ZooEntry(string Family, string Name, bool Built, string Path);

/// <summary>Which members of the known families are built (zoo.json with the current spec hash beside the weights).</summary>
public static class ZooCatalog
{
    public static readonly IReadOnlyList<FamilySpec> Families = [FamilySpec.Full, FamilySpec.Ci];

    public static IReadOnlyList<ZooEntry> List(ZooPaths paths) =>
        Families.SelectMany(f => f.Sizes.Select(s => new ZooEntry(f.Name, f.ModelName(s), IsBuilt(paths, f, s), paths.ModelDir(f, s)))).ToList();

    public static bool IsBuilt(ZooPaths paths, FamilySpec spec, NeoXSize size)
    {
        var dir = paths.ModelDir(spec, size);
        var marker = System.IO.Path.Combine(dir, ZooModelCard.FileName);
        if (!File.Exists(marker) || !File.Exists(System.IO.Path.Combine(dir, "model.safetensors"))) return false;
        try { return JsonSerializer.Deserialize<ZooModelCard>(File.ReadAllText(marker))?.SpecHash == spec.Hash; }
        catch (JsonException) { return false; }
    }
}
