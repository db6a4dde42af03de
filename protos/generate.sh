#!/usr/bin/env bash
# Regenerates every generated Python file from the contracts in protos/ (one command, offline,
# deterministic; tests/unit/test_protos_drift.py fails when the committed output differs):
#   shop/**/<name>_pb2.py, _pb2.pyi, _pb2_grpc.py, _pb2_grpc.pyi   messages, stubs, servicers
#   shop/descriptors.binpb   FileDescriptorSet of every shop proto with imports and comments
#                            (the REST gateway builds its routes and OpenAPI from it)
#   buf/validate/validate_pb2.py(i)   protovalidate's rule options for the google.protobuf
#                            runtime; generated code imports it as `buf.validate`, so it has
#                            to be a top-level package
# Usage: bash protos/generate.sh [OUTPUT_ROOT]   (default: the repository root)
set -euo pipefail
export LC_ALL=C
protos="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$protos/.." && pwd)"
out="$(mkdir -p "${1:-$root}" && cd "${1:-$root}" && pwd)"
bin="${VENV_BIN:-$root/.venv/bin}"

rm -rf "$out/shop" "$out/buf"
mkdir -p "$out/shop" "$out/buf"

cd "$protos"
mapfile -t sources < <(find shop -name '*.proto' | sort)
protoc=(
  "$bin/python" -m grpc_tools.protoc
  -I .
  --descriptor_set_in=buf/validate/validate.binpb
  --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy"
  --plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc"
)
"${protoc[@]}" --python_out="$out" --mypy_out="quiet:$out" buf/validate/validate.proto
"${protoc[@]}" \
  --python_out="$out" --mypy_out="quiet:$out" \
  --grpc_python_out="$out" --mypy_grpc_out="quiet:$out" \
  --descriptor_set_out="$out/shop/descriptors.binpb" --include_imports --include_source_info \
  "${sources[@]}"

# Every generated directory is a regular package; py.typed makes the .pyi stubs count.
find "$out/shop" "$out/buf" -type d | sort | while read -r dir; do
  : >"$dir/__init__.py"
done
printf '"""Generated from protos/ by protos/generate.sh; do not edit."""\n' >"$out/shop/__init__.py"
: >"$out/shop/py.typed"
: >"$out/buf/py.typed"
echo "generated $(find "$out/shop" "$out/buf" -type f | wc -l) files under $out/shop and $out/buf"
