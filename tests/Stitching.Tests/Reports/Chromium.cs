using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Stitching.Tests.Reports;

/// <summary>Debian's headless Chromium (package chromium, installed by ./test): the DOM after load, and a screenshot.</summary>
public static partial class Chromium
{
    public const string Exe = "/usr/bin/chromium";

    /// <summary>
    /// Opens a copy of the page with a probe script appended that writes, into the title, how many of its images
    /// finished loading with a non-zero natural size; returns (loaded, total).
    /// </summary>
    public static (int Loaded, int Total) ImagesLoaded(string htmlPath, string workDir)
    {
        var probe = Path.Combine(workDir, "probe-" + Path.GetFileName(htmlPath));
        File.WriteAllText(probe, File.ReadAllText(htmlPath).Replace("</body>",
            "<script>addEventListener('load', () => { const i = [...document.images]; document.title = 'images ' + i.filter(x => x.complete && x.naturalWidth > 0).length + '/' + i.length; });</script></body>"));
        var dom = Run(workDir, "--dump-dom", "--virtual-time-budget=10000", new Uri(probe).AbsoluteUri);
        var m = TitleRegex().Match(dom);
        if (!m.Success) throw new InvalidOperationException($"chromium's DOM has no probe title: {dom[..Math.Min(400, dom.Length)]}");
        return (int.Parse(m.Groups[1].Value), int.Parse(m.Groups[2].Value));
    }

    /// <summary>A PNG screenshot of the page at the given window size.</summary>
    public static string Screenshot(string htmlPath, string workDir, int width, int height)
    {
        var png = Path.Combine(workDir, Path.GetFileNameWithoutExtension(htmlPath) + "-screenshot.png");
        Run(workDir, $"--screenshot={png}", $"--window-size={width},{height}", "--hide-scrollbars", new Uri(Path.GetFullPath(htmlPath)).AbsoluteUri);
        return File.Exists(png) ? png : throw new InvalidOperationException("chromium wrote no screenshot");
    }

    private static string Run(string workDir, params string[] args)
    {
        if (!File.Exists(Exe)) throw new InvalidOperationException($"{Exe} is missing: apt-get install -y chromium (./test installs it).");
        var psi = new ProcessStartInfo(Exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // root in CI: no sandbox; no GPU here; a profile of its own so parallel runs do not share one.
        foreach (var a in new[] { "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions", $"--user-data-dir={Path.Combine(workDir, "chromium-profile")}" }.Concat(args))
            psi.ArgumentList.Add(a);
        psi.Environment["HOME"] = workDir;
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(120_000)) { p.Kill(true); throw new TimeoutException("chromium did not finish in 120 s"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"chromium failed ({p.ExitCode}): {stderr.Result}");
        return stdout.Result;
    }

    [GeneratedRegex(@"<title>images (\d+)/(\d+)</title>")]
    private static partial Regex TitleRegex();
}
