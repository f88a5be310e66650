using System.Collections.Concurrent;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Stitching.Tests.Otlp.Metrics;
using Stitching.Tests.Otlp.Trace;

namespace Stitching.Tests.Telemetry;

/// <summary>
/// A minimal OTLP/gRPC collector on a loopback port (Kestrel, h2c): it keeps every span and metric name it is
/// sent, so a test can check what a server's OTLP exporter really put on the wire.
/// </summary>
public sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;

    private OtlpReceiver(WebApplication app, Sink sink)
    {
        _app = app;
        Received = sink;
        Address = app.Urls.First();
    }

    public string Address { get; }
    public Sink Received { get; }

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.WebHost.ConfigureKestrel(k => k.ConfigureEndpointDefaults(l => l.Protocols = HttpProtocols.Http2));
        var sink = new Sink();
        builder.Services.AddSingleton(sink);
        builder.Services.AddGrpc();
        var app = builder.Build();
        app.MapGrpcService<Traces>();
        app.MapGrpcService<Metrics>();
        await app.StartAsync();
        return new OtlpReceiver(app, sink);
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    public sealed class Sink
    {
        public ConcurrentQueue<(string Service, Span Span)> Spans { get; } = new();
        public ConcurrentQueue<string> MetricNames { get; } = new();
    }

    private sealed class Traces(Sink sink) : TraceService.TraceServiceBase
    {
        public override Task<ExportTraceServiceResponse> Export(ExportTraceServiceRequest request, ServerCallContext context)
        {
            foreach (var resource in request.ResourceSpans)
            {
                var service = resource.Resource?.Attributes.FirstOrDefault(a => a.Key == "service.name")?.Value?.StringValue ?? "";
                foreach (var span in resource.ScopeSpans.SelectMany(s => s.Spans)) sink.Spans.Enqueue((service, span));
            }
            return Task.FromResult(new ExportTraceServiceResponse());
        }
    }

    private sealed class Metrics(Sink sink) : MetricsService.MetricsServiceBase
    {
        public override Task<ExportMetricsServiceResponse> Export(ExportMetricsServiceRequest request, ServerCallContext context)
        {
            foreach (var m in request.ResourceMetrics.SelectMany(r => r.ScopeMetrics).SelectMany(s => s.Metrics)) sink.MetricNames.Enqueue(m.Name);
            return Task.FromResult(new ExportMetricsServiceResponse());
        }
    }
}
