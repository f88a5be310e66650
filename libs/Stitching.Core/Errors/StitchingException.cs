namespace Stitching.Core.Errors;

/// <summary>What went wrong, in the terms of a caller: the gRPC layer maps each to a status code.</summary>
public enum ErrorKind
{
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    ResourceExhausted,
    Unavailable,
    Cancelled,
    /// <summary>Stored data failed verification (sha256 mismatch, unreadable file).</summary>
    DataLoss,
    /// <summary>The caller may not do this here (a path outside the allowed roots, a kind clients may not write).</summary>
    PermissionDenied,
    Internal,
}

/// <summary>
/// An error a user can hit. The message is a sentence naming the field and the fix; <see cref="Field"/>
/// names the offending request field (dotted path) when there is one.
/// </summary>
public sealed class StitchingException(ErrorKind kind, string message, string? field = null, Exception? inner = null)
    : Exception(message, inner)
{
    public ErrorKind Kind { get; } = kind;
    public string? Field { get; } = field;

    public static StitchingException InvalidArgument(string field, string message) => new(ErrorKind.InvalidArgument, $"{field}: {message}", field);
    public static StitchingException NotFound(string message, string? field = null) => new(ErrorKind.NotFound, message, field);
    public static StitchingException AlreadyExists(string message, string? field = null) => new(ErrorKind.AlreadyExists, message, field);
    public static StitchingException PermissionDenied(string message, string? field = null) => new(ErrorKind.PermissionDenied, message, field);
    public static StitchingException FailedPrecondition(string message, string? field = null) => new(ErrorKind.FailedPrecondition, message, field);
    public static StitchingException ResourceExhausted(string message, string? field = null) => new(ErrorKind.ResourceExhausted, message, field);
    public static StitchingException DataCorrupted(string message, Exception? inner = null) => new(ErrorKind.DataLoss, message, null, inner);
}
