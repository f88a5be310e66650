using System.Collections;
using System.Text.RegularExpressions;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Grpc.Health.V1;
using Microsoft.Extensions.DependencyInjection;
using Stitching.Client;
using Stitching.Contracts.Activations.V1;
using Stitching.Contracts.Common.V1;
using Stitching.Contracts.Sae.V1;
using Stitching.Contracts.Stitch.V1;
using Stitching.Core.Artifacts;
using Stitching.Core.Tensors;
using Stitching.Tests.Fixtures;
using Xunit.Abstractions;

namespace Stitching.Tests.Integration;

/// <summary>
/// A hostile client against a live host: for every RPC a valid request, then requests that differ from it in
/// one field, generated from the contracts by reflection (bad numbers, strings, paths, enums, missing
/// messages, malformed tensors). The server must answer each with a clear status: never INTERNAL or
/// UNKNOWN, never a crash, and an error names the field that was changed. Operations the requests start
/// are followed to their end (or cancelled) and held to the same rule. Afterwards health is SERVING and
/// every stored artifact still verifies.
/// </summary>
[Trait("Category", "Integration")]
public partial class HostileClientTests(ITestOutputHelper output)
{
    private sealed record Probe(string Rpc, string Field, IMessage Request);

    private sealed record Outcome(Probe Probe, StatusCode Code, string Detail);

    [Fact]
    public async Task Malformed_requests_across_every_rpc_get_clear_statuses_and_break_nothing()
    {
        using var allowed = new TempDir("hostile-allowed");
        await using var server = await TestServer.StartAsync(redis: true, testJobs: false, modelsRoot: TinyModels.ModelsRoot, allowedRoots: [allowed.Path]);
        var baseline = await BaselineAsync(server, allowed.Path);
        var probes = baseline.Select(b => new Probe(b.Rpc, "", b.Request)).ToList();
        probes.AddRange(baseline.SelectMany(b => Mutations(b.Rpc, b.Request).Select(m => new Probe(b.Rpc, m.Field, m.Request))));

        var outcomes = new List<Outcome>();
        // STITCHING_HOSTILE_LOG=FILE logs each probe before it is sent (which one took a host down).
        var log = Environment.GetEnvironmentVariable("STITCHING_HOSTILE_LOG");
        foreach (var probe in probes)
        {
            if (log is { Length: > 0 }) File.AppendAllText(log, $"{probe.Rpc} {probe.Field}\n");
            outcomes.Add(await SendAsync(server, probe));
        }
        var uploads = await UploadProbesAsync(server);
        outcomes.AddRange(uploads);

        foreach (var g in outcomes.GroupBy(o => o.Code).OrderBy(g => g.Key.ToString()))
            output.WriteLine($"{g.Key}: {g.Count()}");
        var bad = outcomes.Where(o => o.Code is StatusCode.Internal or StatusCode.Unknown or StatusCode.Unavailable).ToList();
        // ALREADY_EXISTS answers a valid change to a request whose artifact id was already used: it names the id.
        var unnamed = outcomes.Where(o => o.Code is not (StatusCode.OK or StatusCode.AlreadyExists) && o.Probe.Field != "" && !NamesField(o.Detail, o.Probe.Field)).ToList();
        foreach (var o in bad.Concat(unnamed).Take(80))
            output.WriteLine($"{o.Probe.Rpc} {o.Probe.Field}: {o.Code}: {o.Detail}");
        if (log is { Length: > 0 })
            File.AppendAllLines(log, outcomes.Select(o => $"RESULT\t{o.Probe.Rpc}\t{o.Probe.Field}\t{o.Code}\t{o.Detail.ReplaceLineEndings(" ")}"));
        Assert.True(outcomes.Count >= 300, $"only {outcomes.Count} requests were tried");
        Assert.Equal(Methods.Count, outcomes.Select(o => o.Probe.Rpc).Distinct().Count()); // every RPC of every contract
        Assert.True(bad.Count == 0, $"{bad.Count} requests ended INTERNAL, UNKNOWN or UNAVAILABLE (first: {Describe(bad.FirstOrDefault())})");
        Assert.True(unnamed.Count == 0, $"{unnamed.Count} errors do not name their field (first: {Describe(unnamed.FirstOrDefault())})");
        var failedValid = outcomes.Where(o => o.Probe.Field == "" && o.Code != StatusCode.OK).ToList();
        Assert.True(failedValid.Count == 0, $"a valid baseline request failed: {Describe(failedValid.FirstOrDefault())}");

        var health = await new Health.HealthClient(server.Channel).CheckAsync(new HealthCheckRequest());
        Assert.Equal(HealthCheckResponse.Types.ServingStatus.Serving, health.Status);
        var store = server.Server.Services.GetRequiredService<ArtifactStore>();
        var files = 0;
        foreach (var m in store.List())
            foreach (var f in m.Files) { store.ReadAllBytes(m.Ref, f.Name); files++; } // sha256-verified reads
        Assert.True(files > 10);
    }

    private static string Describe(Outcome? o) => o is null ? "" : $"{o.Probe.Rpc} {o.Probe.Field}: {o.Code}: {o.Detail}";

    /// <summary>The error names the changed field: its proto name appears as a word (or as part of a path).</summary>
    private static bool NamesField(string detail, string path)
    {
        var leaf = path.Split('.').Last();
        leaf = Regex.Replace(leaf, @"\[\d+\]$", "");
        return Regex.IsMatch(detail, $@"(^|[^A-Za-z0-9_]){Regex.Escape(leaf)}([^A-Za-z0-9_]|$)");
    }


    // ---- mutations generated from the message descriptors ----

    private static readonly string[] BadStrings = ["", "../../../../etc/passwd", "/etc/passwd", "nonsense\u0000", new string('x', 5000)];
    private static readonly long[] BadIntegers = [-1, int.MaxValue, int.MinValue];
    private static readonly double[] BadDoubles = [double.NaN, double.PositiveInfinity, -1, 1e300];

    private static IEnumerable<(string Field, IMessage Request)> Mutations(string rpc, IMessage request, string prefix = "", int depth = 0)
    {
        var copyOf = () => request.Descriptor.Parser.ParseFrom(request.ToByteString());
        foreach (var f in request.Descriptor.Fields.InDeclarationOrder())
        {
            var path = prefix + f.Name;
            if (f.IsMap) continue;
            if (f.IsRepeated)
            {
                var list = (IList)f.Accessor.GetValue(request);
                if (f.FieldType == FieldType.Message)
                {
                    if (list.Count > 0 && depth < 3)
                        foreach (var (p, m) in Mutations(rpc, (IMessage)list[0]!, path + "[0].", depth + 1))
                            yield return (p, Replace(copyOf(), f, 0, m));
                    continue;
                }
                foreach (var bad in ScalarValues(f))
                {
                    var c = copyOf();
                    ((IList)f.Accessor.GetValue(c)).Add(bad);
                    yield return (path, c);
                }
                continue;
            }
            if (f.FieldType == FieldType.Message)
            {
                if (f.MessageType.FullName is "google.protobuf.BoolValue" or "google.protobuf.Any" or "google.protobuf.Timestamp") continue;
                if (f.MessageType.FullName == "google.protobuf.Int32Value") // a wrapper reads as int?: bad integers, and unset
                {
                    foreach (var bad in BadIntegers.Where(v => v is >= int.MinValue and <= int.MaxValue))
                    {
                        var c = copyOf();
                        f.Accessor.SetValue(c, (int)bad);
                        yield return (path, c);
                    }
                    if (f.Accessor.GetValue(request) is not null) { var c = copyOf(); f.Accessor.Clear(c); yield return (path, c); }
                    continue;
                }
                var value = (IMessage?)f.Accessor.GetValue(request);
                if (value is null) continue;
                var cleared = copyOf();
                f.Accessor.Clear(cleared);
                yield return (path, cleared);
                if (f.MessageType.FullName == "stitching.common.v1.Tensor")
                {
                    foreach (var t in BadTensors((Tensor)value)) { var c = copyOf(); f.Accessor.SetValue(c, t); yield return (path, c); }
                    continue;
                }
                if (depth < 3)
                    foreach (var (p, m) in Mutations(rpc, value, path + ".", depth + 1))
                    {
                        var c = copyOf();
                        f.Accessor.SetValue(c, m);
                        yield return (p, c);
                    }
                continue;
            }
            foreach (var bad in ScalarValues(f))
            {
                var c = copyOf();
                f.Accessor.SetValue(c, bad);
                yield return (path, c);
            }
        }
    }

    private static IMessage Replace(IMessage message, FieldDescriptor f, int index, IMessage element)
    {
        ((IList)f.Accessor.GetValue(message))[index] = element;
        return message;
    }

    private static IEnumerable<object> ScalarValues(FieldDescriptor f) => f.FieldType switch
    {
        FieldType.String => BadStrings,
        FieldType.Int32 or FieldType.SInt32 or FieldType.SFixed32 => BadIntegers.Select(v => (object)(int)Math.Clamp(v, int.MinValue, int.MaxValue)),
        FieldType.Int64 or FieldType.SInt64 or FieldType.SFixed64 => BadIntegers.Append(long.MaxValue).Select(v => (object)v),
        FieldType.UInt64 or FieldType.Fixed64 => [(object)ulong.MaxValue],
        FieldType.UInt32 or FieldType.Fixed32 => [(object)uint.MaxValue],
        FieldType.Double => BadDoubles.Select(v => (object)v),
        FieldType.Float => BadDoubles.Select(v => (object)(float)v),
        FieldType.Enum => [System.Enum.ToObject(f.EnumType.ClrType, 99)],
        FieldType.Bool => [],
        FieldType.Bytes => [ByteString.CopyFromUtf8("not what was expected")],
        _ => [],
    };

    private static IEnumerable<Tensor> BadTensors(Tensor good)
    {
        Tensor With(IEnumerable<long> shape, ByteString? data = null, Stitching.Contracts.Common.V1.DType? dtype = null)
        {
            var t = new Tensor { Name = good.Name, Dtype = dtype ?? good.Dtype, Data = data ?? ByteString.Empty };
            t.Shape.AddRange(shape);
            return t;
        }
        yield return With([0]);
        yield return With([1, 0]);
        yield return With([0, 8]);
        yield return With([1L << 62, 4]);
        yield return With([-3, 4]);
        yield return With(good.Shape, good.Data.Length > 4 ? ByteString.CopyFrom(good.Data.Span[..4]) : ByteString.CopyFromUtf8("xy"));
        yield return With(good.Shape, good.Data, (Stitching.Contracts.Common.V1.DType)99);
        yield return With(good.Shape.Select(s => s).Append(3), ByteString.CopyFrom(new byte[good.Data.Length * 3]));
        var nan = Enumerable.Repeat(float.NaN, (int)Math.Max(1, good.Data.Length / 4)).SelectMany(BitConverter.GetBytes).ToArray();
        if (good.Dtype == Stitching.Contracts.Common.V1.DType.F32) yield return With(good.Shape, ByteString.CopyFrom(nan));
        var wide = With(good.Shape.Count > 0 ? [.. good.Shape.Take(good.Shape.Count - 1), good.Shape[^1] + 5] : [5]);
        wide.Data = ByteString.CopyFrom(new byte[wide.Shape.Aggregate(1L, (a, b) => a * b) * (good.Dtype == Stitching.Contracts.Common.V1.DType.I64 ? 8 : 4)]);
        yield return wide;
    }

    // ---- sending ----

    private static readonly Dictionary<string, (string Service, MethodDescriptor Method)> Methods = new[]
        {
            ActivationsReflection.Descriptor, ArtifactsReflection.Descriptor, OperationsReflection.Descriptor,
            ServerInfoReflection.Descriptor, SaeReflection.Descriptor, StitchReflection.Descriptor, Stitching.Contracts.Eval.V1.EvalReflection.Descriptor, Stitching.Contracts.Eval.V1.ExperimentReflection.Descriptor,
        }
        .SelectMany(d => d.Services).SelectMany(s => s.Methods.Select(m => (s.FullName, m)))
        .ToDictionary(x => x.m.Name, x => (x.FullName, x.m));

    private static async Task<Outcome> SendAsync(TestServer server, Probe probe)
    {
        var (service, md) = Methods[probe.Rpc];
        var parser = md.OutputType.Parser;
        var marshaller = Marshallers.Create<IMessage>(m => m.ToByteArray(), b => parser.ParseFrom(b));
        var inMarshaller = Marshallers.Create<IMessage>(m => m.ToByteArray(), b => md.InputType.Parser.ParseFrom(b));
        var invoker = server.Channel.CreateCallInvoker();
        var options = new CallOptions(deadline: DateTime.UtcNow.AddSeconds(60));
        try
        {
            if (md.IsServerStreaming)
            {
                var method = new Method<IMessage, IMessage>(MethodType.ServerStreaming, service, md.Name, inMarshaller, marshaller);
                using var call = invoker.AsyncServerStreamingCall(method, null, options, probe.Request);
                var n = 0;
                while (await call.ResponseStream.MoveNext(CancellationToken.None) && n++ < 10_000) { }
                return new Outcome(probe, StatusCode.OK, "");
            }
            var unary = new Method<IMessage, IMessage>(MethodType.Unary, service, md.Name, inMarshaller, marshaller);
            var response = await invoker.AsyncUnaryCall(unary, null, options, probe.Request);
            if (response is Operation op && probe.Rpc is not ("GetOperation" or "CancelOperation")) return await FollowAsync(server, probe, op);
            return new Outcome(probe, StatusCode.OK, "");
        }
        catch (RpcException e)
        {
            return new Outcome(probe, e.StatusCode, e.Status.Detail);
        }
    }

    /// <summary>An operation a probe started: its end state (cancelled after 3 s; a cancelled job is fine).</summary>
    private static async Task<Outcome> FollowAsync(TestServer server, Probe probe, Operation op)
    {
        var ops = new OperationsService.OperationsServiceClient(server.Channel);
        var until = DateTime.UtcNow.AddSeconds(3);
        while (op.State is OperationState.Pending or OperationState.Running && DateTime.UtcNow < until)
        {
            await Task.Delay(50);
            op = await ops.GetOperationAsync(new GetOperationRequest { Id = op.Id });
        }
        if (op.State is OperationState.Pending or OperationState.Running)
        {
            await ops.CancelOperationAsync(new CancelOperationRequest { Id = op.Id });
            return new Outcome(probe, StatusCode.OK, "cancelled after 3 s");
        }
        if (op.State != OperationState.Failed) return new Outcome(probe, StatusCode.OK, op.State.ToString());
        var code = System.Enum.TryParse<StatusCode>(op.Error.Code.Replace("_", ""), ignoreCase: true, out var c) ? c : StatusCode.Unknown;
        return new Outcome(probe, code, op.Error.Message);
    }

    /// <summary>UploadTensors, a client stream: kinds other than "tensors", unsafe names, broken chunk sequences.</summary>
    private static async Task<List<Outcome>> UploadProbesAsync(TestServer server)
    {
        var client = new ArtifactsService.ArtifactsServiceClient(server.Channel);
        var outcomes = new List<Outcome>();
        var good = HostTensor.FromFloats("x", [1f, 2f], 2);
        var cases = new List<(string Field, ArtifactRef Target, IEnumerable<TensorChunk> Chunks)>();
        foreach (var kind in new[] { "sae", "stitch", "activation-set", "token-set", "../x", "" })
            cases.Add(("kind", new ArtifactRef { Kind = kind, Id = "forged-" + kind.Length }, TensorCodec.ToChunks(good)));
        foreach (var id in new[] { "", "..", "../../x", "a/b", new string('a', 300) })
            cases.Add(("id", new ArtifactRef { Kind = "tensors", Id = id }, TensorCodec.ToChunks(good)));
        foreach (var name in new[] { "", "../../x", "a\u0000b" })
            cases.Add(("name", new ArtifactRef { Kind = "tensors", Id = "named-" + name.Length }, TensorCodec.ToChunks(HostTensor.FromFloats(name, [1f], 1))));
        var header = TensorCodec.ToChunks(good).First();
        var overflow = header.Clone();
        overflow.Header.Shape.Clear();
        overflow.Header.Shape.AddRange([1L << 62, 4]);
        cases.Add(("shape", new ArtifactRef { Kind = "tensors", Id = "overflow" }, [overflow]));
        cases.Add(("chunk", new ArtifactRef { Kind = "tensors", Id = "short" }, [header]));
        cases.Add(("chunk", new ArtifactRef { Kind = "tensors", Id = "empty-chunk" }, [new TensorChunk()]));
        // Several rounds: a refusal races the client's remaining writes, and the status must not depend on who wins.
        foreach (var (field, target, chunks) in Enumerable.Range(0, 8).SelectMany(_ => cases))
        {
            var probe = new Probe("UploadTensors", field, target);
            try
            {
                await TensorTransfer.UploadChunksAsync(client, new UploadTarget { Ref = target }, chunks);
                outcomes.Add(new Outcome(probe, StatusCode.OK, ""));
            }
            catch (RpcException e) { outcomes.Add(new Outcome(probe, e.StatusCode, e.Status.Detail)); }
        }
        return outcomes;
    }
}
