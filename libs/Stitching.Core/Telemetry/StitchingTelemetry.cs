using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Stitching.Core.Telemetry;

/// <summary>
/// One ActivitySource and one Meter per service ("Stitching.Activations", ...). Attribute names are
/// the convention every span and metric uses, so FLOPs and tokens can be summed across services.
/// </summary>
public sealed class StitchingTelemetry : IDisposable
{
    public const string Prefix = "Stitching";
    public const string FlopsAttribute = "stitching.flops";
    public const string TokensAttribute = "stitching.tokens";
    public const string BytesAttribute = "stitching.bytes";
    public const string ModelAttribute = "stitching.model";
    public const string HookAttribute = "stitching.hook";
    public const string OperationAttribute = "stitching.operation_id";
    public const string ArtifactAttribute = "stitching.artifact";
    public const string StageAttribute = "stitching.stage";

    public StitchingTelemetry(string service)
    {
        Name = $"{Prefix}.{service}";
        Source = new ActivitySource(Name);
        Meter = new Meter(Name);
        FlopsCounter = Meter.CreateCounter<double>("stitching.flops", unit: "{flop}", description: "analytic FLOPs spent");
        TokensCounter = Meter.CreateCounter<long>("stitching.tokens", unit: "{token}", description: "tokens processed");
        BytesCounter = Meter.CreateCounter<long>("stitching.bytes", unit: "By", description: "activation bytes produced or consumed");
        TokensPerSecond = Meter.CreateHistogram<double>("stitching.tokens_per_second", unit: "{token}/s", description: "throughput of one unit of work (an extraction, a fit, an SAE training run)");
        FlopsPerSecond = Meter.CreateHistogram<double>("stitching.flops_per_second", unit: "{flop}/s", description: "analytic FLOPs per second of one unit of work");
    }

    public string Name { get; }
    public ActivitySource Source { get; }
    public Meter Meter { get; }
    public Counter<double> FlopsCounter { get; }
    public Counter<long> TokensCounter { get; }
    public Counter<long> BytesCounter { get; }
    public Histogram<double> TokensPerSecond { get; }
    public Histogram<double> FlopsPerSecond { get; }

    /// <summary>
    /// The end of one unit of work (stage: extract, fit, train...): tokens and bytes on its span and counters,
    /// and its throughput (tokens/s, FLOP/s over <paramref name="seconds"/>) on the histograms. FLOPs are
    /// counted as they are spent (<see cref="AddFlops"/>); pass the total here only for the rate.
    /// </summary>
    public void RecordWork(string stage, long tokens, double flops, long bytes, double seconds, Activity? activity = null)
    {
        activity ??= Activity.Current;
        activity?.SetTag(StageAttribute, stage);
        activity?.SetTag(TokensAttribute, tokens);
        activity?.SetTag(BytesAttribute, bytes);
        var tag = new KeyValuePair<string, object?>(StageAttribute, stage);
        TokensCounter.Add(tokens, tag);
        BytesCounter.Add(bytes, tag);
        if (seconds <= 0) return;
        TokensPerSecond.Record(tokens / seconds, tag);
        FlopsPerSecond.Record(flops / seconds, tag);
    }

    /// <summary>Records FLOPs on the current span (added to what it has) and on the service's counter.</summary>
    public void AddFlops(double flops, Activity? activity = null)
    {
        activity ??= Activity.Current;
        if (activity is not null)
        {
            var before = activity.GetTagItem(FlopsAttribute) is double d ? d : 0.0;
            activity.SetTag(FlopsAttribute, before + flops);
        }
        FlopsCounter.Add(flops);
    }

    public void Dispose()
    {
        Source.Dispose();
        Meter.Dispose();
    }
}
