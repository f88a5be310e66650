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

    public StitchingTelemetry(string service)
    {
        Name = $"{Prefix}.{service}";
        Source = new ActivitySource(Name);
        Meter = new Meter(Name);
        FlopsCounter = Meter.CreateCounter<double>("stitching.flops", unit: "{flop}", description: "analytic FLOPs spent");
        TokensCounter = Meter.CreateCounter<long>("stitching.tokens", unit: "{token}", description: "tokens processed");
    }

    public string Name { get; }
    public ActivitySource Source { get; }
    public Meter Meter { get; }
    public Counter<double> FlopsCounter { get; }
    public Counter<long> TokensCounter { get; }

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
