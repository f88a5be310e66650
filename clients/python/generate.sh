#!/usr/bin/env bash
# Generates the Python stubs for the stitching contracts (../../protos) and for grpc.health.v1
# (protos/grpc_health/v1/health.proto, our own copy of the standard file) into stitching/_gen/.
# The output is git-ignored; run this after every contract change.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-/usr/bin/python3}"
out="$here/stitching/_gen"

rm -rf "$out"
mkdir -p "$out"
cd "$here"
"$python" -m grpc_tools.protoc \
  -I ../../protos -I protos \
  --python_out="$out" --grpc_python_out="$out" \
  $(cd ../../protos && find stitching -name '*.proto' | sort) \
  grpc_health/v1/health.proto
echo "generated $(find "$out" -name '*.py' | wc -l) modules in $out"
