#!/usr/bin/env bash
# Regenerates the package's protobuf/gRPC modules from the contracts (../../protos) and the client's own protos
# (protos/: grpc.health.v1, and the google.rpc.Status shape for error details) with Debian's grpc_tools:
#   stitching/common/v1/*_pb2.py, ..., stitching/_health/, stitching/_rpc/, stitching/_version.py.
# They are committed; run this after every contract change (tests/test_package.py fails until you do).
#   clients/python/generate.sh [OUT]      # OUT: another folder to write the same tree into
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-/usr/bin/python3}"
exec "$python" -B "$here/_build/genstubs.py" "$@"
