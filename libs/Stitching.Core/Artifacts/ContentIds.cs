using System.Security.Cryptography;
using System.Text;

namespace Stitching.Core.Artifacts;

/// <summary>Content-derived artifact ids: a prefix and the first hex digits of a SHA-256, so asking twice names one artifact.</summary>
public static class ContentIds
{
    /// <summary>Lower-case hex SHA-256 of UTF-8 text.</summary>
    public static string Sha256Hex(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    /// <summary>Lower-case hex SHA-256 of bytes.</summary>
    public static string Sha256Hex(ReadOnlySpan<byte> bytes) => Convert.ToHexStringLower(SHA256.HashData(bytes));

    /// <summary><paramref name="prefix"/> + the first <paramref name="digits"/> hex digits of SHA-256(text).</summary>
    public static string Of(string prefix, string text, int digits = 20) => prefix + Sha256Hex(text)[..digits];
}
