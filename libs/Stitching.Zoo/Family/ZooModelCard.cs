using System.Text.Json;

namespace Stitching.Zoo.Family;

/// <summary>
/// zoo.json beside a trained checkpoint: what spec made it and what it measured. Cross-entropies are
/// nats per token on the held-out windows of the named split; CpuSeconds is the process CPU time of
/// the training loop (wall time depends on what else the machine runs).
/// </summary>
public sealed record ZooModelCard(string Family, string Name, string SpecHash, int Width, int Layers, int Heads, long Parameters,
                                  long TrainingTokens, int Steps, double WallSeconds, double CpuSeconds, double TokensPerSecond, double FinalTrainLoss,
                                  double ValidationLoss, double TestLoss, double ReloadMaxAbsDiff, int Seed, int Threads)
{
    public const string FileName = "zoo.json";

    public void Save(string dir) =>
        File.WriteAllText(Path.Combine(dir, FileName), JsonSerializer.Serialize(this, new JsonSerializerOptions { WriteIndented = true }));

    public static ZooModelCard? Load(string dir)
    {
        var path = Path.Combine(dir, FileName);
        return File.Exists(path) ? JsonSerializer.Deserialize<ZooModelCard>(File.ReadAllText(path)) : null;
    }
}
