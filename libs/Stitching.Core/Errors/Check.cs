namespace Stitching.Core.Errors;

/// <summary>
/// Request validation at the edge, one helper family: each returns the value when it is acceptable and
/// otherwise throws INVALID_ARGUMENT naming the field and what would fix it ("0 = default" and the like
/// go in <c>hint</c>).
/// </summary>
public static class Check
{
    public static double Finite(double value, string field, string hint = "")
    {
        if (!double.IsFinite(value)) throw StitchingException.InvalidArgument(field, $"is {value}; give a finite number{Tail(hint)}");
        return value;
    }

    /// <summary>Finite and inside [min, max].</summary>
    public static double InRange(double value, double min, double max, string field, string hint = "")
    {
        if (!double.IsFinite(value) || value < min || value > max)
            throw StitchingException.InvalidArgument(field, $"is {value}; it must lie in [{min}, {max}]{Tail(hint)}");
        return value;
    }

    public static long InRange(long value, long min, long max, string field, string hint = "")
    {
        if (value < min || value > max) throw StitchingException.InvalidArgument(field, $"is {value}; it must lie in [{min}, {max}]{Tail(hint)}");
        return value;
    }

    public static int InRange(int value, int min, int max, string field, string hint = "") => (int)InRange((long)value, min, max, field, hint);

    public static long NonNegative(long value, string field, string hint = "") => InRange(value, 0, long.MaxValue, field, hint);

    public static int NonNegative(int value, string field, string hint = "") => InRange(value, 0, int.MaxValue, field, hint);

    /// <summary>An enum value the contract defines (a client can send any number).</summary>
    public static T Defined<T>(T value, string field) where T : struct, Enum
    {
        if (!Enum.IsDefined(value))
            throw StitchingException.InvalidArgument(field, $"{Convert.ToInt64(value)} is not a defined value; use one of {string.Join(", ", Enum.GetNames<T>())}.");
        return value;
    }

    /// <summary>A non-empty name (hook, tensor, model) without control characters or "..", at most 512 characters.</summary>
    public static string Name(string? value, string field, string what = "a name")
    {
        if (string.IsNullOrEmpty(value)) throw StitchingException.InvalidArgument(field, $"is empty; give {what}.");
        if (value.Length > 512 || value.Any(char.IsControl) || value.Contains(".."))
            throw StitchingException.InvalidArgument(field, $"'{Shorten(value)}' is not {what}: at most 512 characters, no control characters, no '..'.");
        return value;
    }

    public static string Shorten(string s) => s.Length <= 80 ? s.Replace('\0', '?') : s[..80].Replace('\0', '?') + "...";

    private static string Tail(string hint) => string.IsNullOrEmpty(hint) ? "." : $" ({hint}).";
}
