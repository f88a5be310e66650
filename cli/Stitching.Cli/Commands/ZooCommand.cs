using System.CommandLine;
using Stitching.Hosting;
using Stitching.Corpora.Brown;
using Stitching.Zoo.Family;

namespace Stitching.Cli.Commands;

/// <summary>
/// stitch zoo build | list: the embedded model family trained on the Brown corpus. Building runs in this
/// process (it is local training, not a server call) and writes into the same model store the servers read.
/// </summary>
public static class ZooCommand
{
    public static Command Create()
    {
        var family = new Option<string>("--family") { Description = "Which family: full (the default family) or ci (tiny, for tests).", DefaultValueFactory = _ => "full" };
        family.AcceptOnlyFromAmong("full", "ci");
        var build = new Command("build", "Train the family (tokenizer, labelled sets, every size) unless already built with the same spec.") { family };
        build.SetAction((parse, ct) => Task.Run(() =>
        {
            var spec = FamilySpec.Named(parse.GetValue(family)!);
            var paths = Paths(parse);
            var report = BuildFamily(spec, paths, ct);
            CliOutput.Print(parse, new { report, labelled_sets = paths.LabelsDir(spec) }, () =>
            {
                Console.WriteLine(report.Markdown());
                Console.WriteLine($"labelled sets: {paths.LabelsDir(spec)}");
            });
            return 0;
        }, ct));
        var list = new Command("list", "One line per zoo model: name, built or not, checkpoint folder.") { };
        list.SetAction(parse =>
        {
            var entries = ZooCatalog.List(Paths(parse));
            CliOutput.Print(parse, entries, () =>
            {
                foreach (var e in entries) Console.WriteLine($"{e.Name,-12} {(e.Built ? "built" : "not built"),-10} {e.Path}");
            });
            return 0;
        });
        return new Command("zoo", "The embedded Pythia-style family trained on the Brown corpus.") { build, list };
    }

    /// <summary>Builds (or finds built) a family with a progress bar on stderr.</summary>
    public static ZooReport BuildFamily(FamilySpec spec, ZooPaths paths, CancellationToken ct)
    {
        Console.Error.WriteLine($"building family '{spec.Name}' (spec {spec.Hash}) into {paths.ModelsRoot}");
        var bar = new ProgressBar(Console.Error);
        var report = new ZooBuilder(spec, paths, BrownCorpus.Shared).Build(new SyncProgress<BuildProgress>(p => bar.Update(p.Fraction, p.Detail)), ct);
        bar.Finish();
        return report;
    }

    public static ZooPaths Paths(ParseResult parse) =>
        ZooPaths.ForStore(parse.GetValue(ServerConnection.StoreOption) ?? StitchingOptions.DefaultStoreRoot(),
            Environment.GetEnvironmentVariable("Stitching__ModelsRoot"));

    /// <summary>IProgress that reports on the caller's thread (Progress&lt;T&gt; would post to the thread pool out of order).</summary>
    private sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}
