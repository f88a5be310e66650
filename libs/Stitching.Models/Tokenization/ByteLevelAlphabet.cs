namespace Stitching.Models.Tokenization;

/// <summary>
/// GPT-2's reversible byte-to-character mapping: printable bytes map to themselves, the others to
/// U+0100 onwards in byte order, so every byte string becomes a string of visible characters.
/// </summary>
public static class ByteLevelAlphabet
{
    private static readonly char[] ByteToChar = BuildByteToChar();
    private static readonly Dictionary<char, byte> CharToByte = BuildCharToByte();

    /// <summary>The character standing for a byte.</summary>
    public static char ToChar(byte b) => ByteToChar[b];

    /// <summary>The byte a character stands for, or null when the character is not in the alphabet.</summary>
    public static byte? ToByte(char c) => CharToByte.TryGetValue(c, out var b) ? b : null;

    /// <summary>All 256 characters, ordered by their code point.</summary>
    public static IReadOnlyList<char> Characters { get; } = ByteToChar.Order().ToArray();

    /// <summary>Maps the UTF-8 bytes of a string to alphabet characters.</summary>
    public static string Encode(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        var chars = new char[bytes.Length];
        for (var i = 0; i < bytes.Length; i++) chars[i] = ByteToChar[bytes[i]];
        return new string(chars);
    }

    private static bool IsPrintable(int b) => b is >= '!' and <= '~' or >= 0xA1 and <= 0xAC or >= 0xAE and <= 0xFF;

    private static char[] BuildByteToChar()
    {
        var map = new char[256];
        var next = 256;
        for (var b = 0; b < 256; b++) map[b] = IsPrintable(b) ? (char)b : (char)next++;
        return map;
    }

    private static Dictionary<char, byte> BuildCharToByte()
    {
        var map = new Dictionary<char, byte>(256);
        for (var b = 0; b < 256; b++) map[ByteToChar[b]] = (byte)b;
        return map;
    }
}
