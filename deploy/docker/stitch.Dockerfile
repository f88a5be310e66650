# syntax=docker/dockerfile:1
# The stitch service host: stitching.stitch.v1.StitchService (layer matching, stitch fitting, applying maps).
# Also grpc.health.v1, reflection and the shared operations/artifacts/server-info services, on 50051 (h2c);
# Kubernetes runs it as deploy/k8s/base/stitch.yaml. The stitch CLI rides along for the HEALTHCHECK and for operators.
#
# Build from the repository root (deploy/README.md):
#   docker build -f deploy/docker/stitch.Dockerfile -t stitching/stitch:latest .
#   docker build -f deploy/docker/stitch.Dockerfile --build-arg TORCH_BACKEND=cuda -t stitching/stitch:latest-cuda .
# Written without a Docker engine at hand (none on the dev machines): never built there; the publish step below is
# what tests/Stitching.Tests/Deploy/PublishTests.cs runs.

# cpu: TorchSharp-cpu on the ASP.NET image. cuda: TorchSharp-cuda-linux (build/TorchBackend.targets) on NVIDIA's CUDA 12.8
# runtime (libtorch-cuda-12.8 brings its own cuDNN and cuBLAS); the node supplies the driver.
ARG TORCH_BACKEND=cpu
ARG SDK_IMAGE=mcr.microsoft.com/dotnet/sdk:10.0-noble
ARG ASPNET_IMAGE=mcr.microsoft.com/dotnet/aspnet:10.0-noble
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-runtime-ubuntu24.04

FROM ${SDK_IMAGE} AS build
ARG TORCH_BACKEND
ENV DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
WORKDIR /src
COPY . .
# The host, then the CLI into the same folder. Framework-dependent for linux-x64 only (no Windows/macOS libtorch);
# IsRidAgnostic=false builds every project once, for linux-x64, shared by both (without it the CLI's publish fails,
# NETSDK1152: the services it reaches through Stitching.Server build with and without the RID). The GLIBCXX patch of build/
# finds Ubuntu 24.04's libstdc++ new enough and does nothing (-p:StitchingSkipTorchPatch=true would skip it outright).
RUN --mount=type=cache,id=stitching-nuget,target=/root/.nuget/packages \
    for project in services/stitch/Stitching.Stitch.csproj cli/Stitching.Cli/Stitching.Cli.csproj; do \
      dotnet publish "$project" -c Release -r linux-x64 --self-contained false -p:UseAppHost=false -p:IsRidAgnostic=false \
        -p:TorchBackend="$TORCH_BACKEND" -o /app || exit 1; \
    done

FROM ${ASPNET_IMAGE} AS aspnet

FROM aspnet AS runtime-cpu

FROM ${CUDA_IMAGE} AS runtime-cuda
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates libssl3t64 libstdc++6 tzdata zlib1g \
 && rm -rf /var/lib/apt/lists/*
COPY --from=aspnet /usr/share/dotnet /usr/share/dotnet
RUN ln -s /usr/share/dotnet/dotnet /usr/bin/dotnet
ENV DOTNET_RUNNING_IN_CONTAINER=true

FROM runtime-${TORCH_BACKEND}
ARG TORCH_BACKEND
LABEL dev.stitching.images="stitching/stitch" \
      dev.stitching.torch-backend="${TORCH_BACKEND}" \
      org.opencontainers.image.title="stitching/stitch"
# uid/gid 10001: the runAsUser/runAsGroup of the Kubernetes pods. /data: the artifact store volume's mount point.
RUN groupadd --system --gid 10001 stitching \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home --shell /usr/sbin/nologin stitching \
 && mkdir -p /data && chown 10001:10001 /data
COPY --from=build /app /app
ENV ASPNETCORE_URLS=http://0.0.0.0:50051 \
    ASPNETCORE_HTTP_PORTS="" \
    STITCHING_STORE=/data/store \
    HF_HOME=/data/huggingface
USER 10001:10001
WORKDIR /data
EXPOSE 50051
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
  CMD ["dotnet", "/app/stitch.dll", "health", "--server", "http://127.0.0.1:50051"]
ENTRYPOINT ["dotnet", "/app/Stitching.Stitch.dll"]
