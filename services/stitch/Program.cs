using Stitching.Hosting;
using Stitching.Stitch;

// The stitch service on its own (Kubernetes runs one Deployment per service); set ASPNETCORE_URLS to choose the port.
var builder = WebApplication.CreateBuilder(args);
builder.AddStitchingDefaults("stitch").AddStitchService();
var app = builder.Build();
app.MapStitchingDefaults().MapStitchService();
app.Run();
