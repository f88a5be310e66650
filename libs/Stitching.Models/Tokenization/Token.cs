namespace Stitching.Models.Tokenization;

/// <summary>One token in the pipeline: id, string, original UTF-16 span and whether it is special.</summary>
internal readonly record struct Token(int Id, string Value, int Start, int End, bool Special);
