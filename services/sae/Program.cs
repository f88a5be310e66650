using Stitching.Hosting;
using Stitching.Sae;

// The sae service on its own (Kubernetes runs one Deployment per service); set ASPNETCORE_URLS to choose the port.
var builder = WebApplication.CreateBuilder(args);
builder.AddStitchingDefaults("sae").AddSaeService();
var app = builder.Build();
app.MapStitchingDefaults().MapSaeService();
app.Run();
