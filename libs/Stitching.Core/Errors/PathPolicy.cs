namespace Stitching.Core.Errors;

/// <summary>
/// Which server-side paths a client may name (architecture.md, "Trust boundaries"): only those under the
/// configured roots, after resolving every symbolic link; none when no root is configured. Decided before
/// anything else is looked up, so a refused path reveals nothing about what exists. Reads are of regular
/// files only (no FIFOs, devices or sockets) and capped in size.
/// </summary>
public sealed class PathPolicy(IReadOnlyList<string> roots, long maxReadBytes = 4L << 30)
{
    public const string Setting = "Stitching:AllowedRoots";
    private readonly string[] _roots = roots.Where(r => !string.IsNullOrWhiteSpace(r)).Select(r => RealPath(Path.GetFullPath(r))).ToArray();

    public bool Enabled => _roots.Length > 0;
    public long MaxReadBytes => maxReadBytes;

    /// <summary>The real (link-free) absolute path of <paramref name="path"/>, when it lies under a root; PERMISSION_DENIED otherwise.</summary>
    public string Resolve(string? path, string field)
    {
        if (string.IsNullOrEmpty(path)) throw StitchingException.InvalidArgument(field, "is empty; give a path under one of the server's allowed roots, or send the data over gRPC.");
        if (path.Length > 4096 || path.Any(char.IsControl))
            throw StitchingException.InvalidArgument(field, "is not a usable path (control characters, or longer than 4096 characters).");
        if (!Enabled)
            throw StitchingException.PermissionDenied($"{field}: this server reads and writes no client-named paths ({Setting} is empty); send the data over gRPC (texts, jsonl, tensors, uploads), or have the operator allow a folder.", field);
        string real;
        try { real = RealPath(Path.GetFullPath(path)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
        {
            throw StitchingException.PermissionDenied($"{field}: the path cannot be resolved under the allowed roots.", field);
        }
        if (!_roots.Any(root => real == root || real.StartsWith(root.EndsWith('/') ? root : root + "/", StringComparison.Ordinal)))
            throw StitchingException.PermissionDenied($"{field}: '{Check.Shorten(path)}' is outside the folders this server allows ({Setting}).", field);
        return real;
    }

    /// <summary>A regular file under a root that may be read (size capped).</summary>
    public string ResolveReadableFile(string? path, string field)
    {
        var real = Resolve(path, field);
        var info = new FileInfo(real);
        if (!info.Exists) throw StitchingException.NotFound($"{field}: '{Check.Shorten(path!)}' does not exist on the server.", field);
        RequireRegular(info, path!, field);
        if (info.Length > maxReadBytes)
            throw StitchingException.ResourceExhausted($"{field}: '{Check.Shorten(path!)}' has {info.Length} bytes, over the {maxReadBytes} a path may make this server read.", field);
        return real;
    }

    /// <summary>A folder under a root whose regular files may be read; every file in it is checked and capped.</summary>
    public string ResolveReadableFolder(string? path, string field)
    {
        var real = Resolve(path, field);
        if (!Directory.Exists(real)) throw StitchingException.NotFound($"{field}: folder '{Check.Shorten(path!)}' does not exist on the server.", field);
        long total = 0;
        foreach (var f in new DirectoryInfo(real).EnumerateFiles())
        {
            var target = f.LinkTarget is null ? f : new FileInfo(Resolve(f.FullName, field));
            RequireRegular(target, f.FullName, field);
            total += target.Length;
        }
        if (total > maxReadBytes) throw StitchingException.ResourceExhausted($"{field}: the folder holds {total} bytes, over the {maxReadBytes} a path may make this server read.", field);
        return real;
    }

    /// <summary>A folder under a root to write into; it must not exist yet (nothing already there is overwritten).</summary>
    public string ResolveNewFolder(string? path, string field)
    {
        var real = Resolve(path, field);
        if (Directory.Exists(real) || File.Exists(real))
            throw StitchingException.AlreadyExists($"{field}: '{Check.Shorten(path!)}' already exists; export into a new folder.", field);
        return real;
    }

    private static void RequireRegular(FileInfo info, string shown, string field)
    {
        // FIFOs, sockets and devices carry no regular-file mode bits here; a read of one could block or never end.
        if (!IsRegularFile(info.FullName))
            throw StitchingException.PermissionDenied($"{field}: '{Check.Shorten(shown)}' is not a regular file.", field);
    }

    /// <summary>True for regular files, by the stat(2) type bits: FIFOs, sockets and devices all look "Normal" to .NET.</summary>
    private static bool IsRegularFile(string path)
    {
        if (!OperatingSystem.IsLinux()) return File.Exists(path);
        var offset = System.Runtime.InteropServices.RuntimeInformation.ProcessArchitecture switch
        {
            System.Runtime.InteropServices.Architecture.X64 => 24, // st_dev, st_ino, st_nlink (8 bytes each), then st_mode
            System.Runtime.InteropServices.Architecture.Arm64 => 16, // st_dev, st_ino, then st_mode
            _ => -1,
        };
        if (offset < 0) return File.Exists(path);
        var buffer = new byte[256];
        if (Stat(path, buffer) != 0) return false;
        var mode = BitConverter.ToUInt32(buffer, offset);
        return (mode & 0xF000) == 0x8000; // S_IFMT == S_IFREG
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "stat", SetLastError = true)]
    private static extern int Stat([System.Runtime.InteropServices.MarshalAs(System.Runtime.InteropServices.UnmanagedType.LPUTF8Str)] string path, byte[] buffer);

    /// <summary>The path with every symbolic link along it resolved (the parts that exist).</summary>
    public static string RealPath(string full)
    {
        var parts = full.Split('/', StringSplitOptions.RemoveEmptyEntries);
        var current = "/";
        for (var i = 0; i < parts.Length; i++)
        {
            var next = Path.Combine(current, parts[i]);
            FileSystemInfo info = Directory.Exists(next) ? new DirectoryInfo(next) : new FileInfo(next);
            if (info.LinkTarget is not null)
            {
                var target = info.ResolveLinkTarget(returnFinalTarget: true);
                next = target is null ? next : RealPath(Path.GetFullPath(target.FullName));
            }
            current = next;
        }
        return current;
    }
}
