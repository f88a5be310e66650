using Stitching.Hosting;
using Stitching.Eval;

// The eval service on its own (Kubernetes runs one Deployment per service); set ASPNETCORE_URLS to choose the port.
var builder = WebApplication.CreateBuilder(args);
builder.AddStitchingDefaults("eval").AddEvalService();
var app = builder.Build();
app.MapStitchingDefaults().MapEvalService();
app.Run();
