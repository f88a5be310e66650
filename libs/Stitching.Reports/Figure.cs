namespace Stitching.Reports;

/// <summary>
/// One rendered figure: the report section it belongs to (the report.json key: splice, sae, sae_eval, probes,
/// steering, features), a file-name stem, a caption and the PNG bytes.
/// </summary>
public sealed record Figure(string Section, string Name, string Caption, byte[] Png);
