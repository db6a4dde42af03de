#!/usr/bin/env bash
# Refreshes the third-party contract inputs under protos/ from the installed Python packages, so
# that generate.sh itself reads only committed files (generation is reproducible offline):
#   protos/google/api/{annotations,http}.proto  from googleapis-common-protos (ships the sources);
#   protos/buf/validate/validate.binpb          from protovalidate, whose wheel ships validate.proto
#                                               only as a serialized descriptor; we store it as a
#                                               FileDescriptorSet that protoc reads with
#                                               --descriptor_set_in.
# Run it after upgrading either package, then `bash protos/generate.sh`.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-$here/../.venv/bin/python}"

"$python" - "$here" <<'PY'
import ast
import importlib.util
import pathlib
import shutil
import sys

from google.protobuf import descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2

here = pathlib.Path(sys.argv[1])
api = pathlib.Path(importlib.util.find_spec("google.api.annotations_pb2").origin).parent
for name in ("annotations.proto", "http.proto"):
    shutil.copyfile(api / name, here / "google" / "api" / name)

pv = pathlib.Path(importlib.util.find_spec("protovalidate").origin).parent
source = (pv / "_gen" / "buf" / "validate" / "validate_pb.py").read_text()
blobs = [
    node.args[0].value
    for node in ast.walk(ast.parse(source))
    if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "file_desc"
]
if len(blobs) != 1:
    sys.exit("protovalidate layout changed: expected one file_desc(...) in validate_pb.py")
fds = descriptor_pb2.FileDescriptorSet()
for module in (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2):
    fds.file.add().ParseFromString(module.DESCRIPTOR.serialized_pb)
validate = fds.file.add()
validate.ParseFromString(blobs[0])
assert validate.name == "buf/validate/validate.proto", validate.name
(here / "buf" / "validate" / "validate.binpb").write_bytes(fds.SerializeToString(deterministic=True))
PY
echo "vendored google/api and buf/validate into $here"
