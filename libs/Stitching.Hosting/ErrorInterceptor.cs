using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;
using Stitching.Core.Errors;

namespace Stitching.Hosting;

/// <summary>
/// Maps domain exceptions to gRPC statuses with the domain's message (a sentence naming the field
/// and the fix), attaching google.rpc.BadRequest field violations for invalid arguments. Anything
/// unexpected becomes INTERNAL with the exception's message and is logged; the service keeps running.
/// </summary>
public sealed class ErrorInterceptor(ILogger<ErrorInterceptor> log) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context, UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try { return await continuation(request, context); }
        catch (Exception e) when (e is not RpcException) { throw Map(e, context); }
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try { return await continuation(requestStream, context); }
        catch (Exception e) when (e is not RpcException) { throw Map(e, context); }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try { await continuation(request, responseStream, context); }
        catch (Exception e) when (e is not RpcException) { throw Map(e, context); }
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream, IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        try { await continuation(requestStream, responseStream, context); }
        catch (Exception e) when (e is not RpcException) { throw Map(e, context); }
    }

    private RpcException Map(Exception e, ServerCallContext context)
    {
        if (e is OperationCanceledException && context.CancellationToken.IsCancellationRequested)
            return new RpcException(new Grpc.Core.Status(StatusCode.Cancelled, "The call was cancelled by the client or its deadline passed."));
        if (e is StitchingException se)
        {
            var status = new Google.Rpc.Status { Code = (int)ToCode(se.Kind), Message = se.Message };
            if (se.Kind == ErrorKind.InvalidArgument && se.Field is not null)
                status.Details.Add(Any.Pack(new BadRequest { FieldViolations = { new BadRequest.Types.FieldViolation { Field = se.Field, Description = se.Message } } }));
            if (se.Kind is ErrorKind.Internal or ErrorKind.DataLoss) log.LogError(e, "{Method} failed: {Message}", context.Method, se.Message);
            else log.LogWarning("{Method} failed: {Code} {Field}: {Message}", context.Method, ToCode(se.Kind), se.Field ?? "", se.Message);
            return status.ToRpcException();
        }
        if (e.GetType() == typeof(System.Runtime.InteropServices.ExternalException))
        {
            // A libtorch error TorchSharp surfaced: input the edge did not catch. The service is intact.
            log.LogWarning("{Method} failed in a tensor operation: {Message}", context.Method, e.Message);
            return new RpcException(new Grpc.Core.Status(StatusCode.InvalidArgument, $"a tensor operation rejected the request's data: {FirstLine(e.Message)}"));
        }
        var correlation = Guid.NewGuid().ToString("N")[..12];
        log.LogError(e, "{Method} failed unexpectedly (correlation id {Correlation})", context.Method, correlation);
        return new RpcException(new Grpc.Core.Status(StatusCode.Internal, $"internal error in {context.Method} (correlation id {correlation}; the server log has the details)."));
    }

    private static string FirstLine(string s) => s.Split('\n')[0].Trim();

    public static StatusCode ToCode(ErrorKind kind) => kind switch
    {
        ErrorKind.InvalidArgument => StatusCode.InvalidArgument,
        ErrorKind.NotFound => StatusCode.NotFound,
        ErrorKind.AlreadyExists => StatusCode.AlreadyExists,
        ErrorKind.FailedPrecondition => StatusCode.FailedPrecondition,
        ErrorKind.ResourceExhausted => StatusCode.ResourceExhausted,
        ErrorKind.Unavailable => StatusCode.Unavailable,
        ErrorKind.Cancelled => StatusCode.Cancelled,
        ErrorKind.DataLoss => StatusCode.DataLoss,
        ErrorKind.PermissionDenied => StatusCode.PermissionDenied,
        _ => StatusCode.Internal,
    };
}
