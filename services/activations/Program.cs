using Stitching.Hosting;
using Stitching.Activations;

// The activations service on its own (Kubernetes runs one Deployment per service); set ASPNETCORE_URLS to choose the port.
var builder = WebApplication.CreateBuilder(args);
builder.AddStitchingDefaults("activations").AddActivationsService();
var app = builder.Build();
app.MapStitchingDefaults().MapActivationsService();
app.Run();
