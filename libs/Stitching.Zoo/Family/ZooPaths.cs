namespace Stitching.Zoo.Family;

/// <summary>
/// Where a family lives: its models in the model store ({ModelsRoot}/{prefix}-{size}, served by name like
/// any checkpoint) and its shared files (tokenizer, labelled sets, report) in {ZooRoot}/{family}-{hash}.
/// </summary>
public sealed record ZooPaths(string ModelsRoot, string ZooRoot)
{
    /// <summary>Paths under a store root: {store}/models (unless a models root is given) and {store}/zoo.</summary>
    public static ZooPaths ForStore(string storeRoot, string? modelsRoot = null) =>
        new(Path.GetFullPath(string.IsNullOrEmpty(modelsRoot) ? Path.Combine(storeRoot, "models") : modelsRoot), Path.GetFullPath(Path.Combine(storeRoot, "zoo")));

    public string FamilyDir(FamilySpec spec) => Path.Combine(ZooRoot, $"{spec.Name}-{spec.Hash}");
    public string TokenizerPath(FamilySpec spec) => Path.Combine(FamilyDir(spec), "tokenizer.json");
    public string LabelsDir(FamilySpec spec) => Path.Combine(FamilyDir(spec), "labels");
    public string ReportPath(FamilySpec spec) => Path.Combine(FamilyDir(spec), "report.json");
    public string ModelDir(FamilySpec spec, Training.NeoXSize size) => Path.Combine(ModelsRoot, spec.ModelName(size));
}
