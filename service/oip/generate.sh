#!/usr/bin/env bash
# Regenerate the checked-in gRPC code from grpc_service.proto (run from the repository root).
# grpcio-tools' protoc writes `import grpc_service_pb2`, an absolute import that only works
# with the folder on sys.path; the first sed makes it package-relative. The second registers
# the messages in a private descriptor pool instead of protobuf's default one: tritonclient
# registers the same `inference.*` names (same .proto lineage) in the default pool, and a
# process that imports both (the test suite, a benchmark) would otherwise fail with
# "duplicate file name grpc_service.proto". The wire format does not depend on the pool.
set -euo pipefail
out=service/oip/generated
.venv/bin/python -m grpc_tools.protoc -I service/oip \
    --python_out="$out" --grpc_python_out="$out" --pyi_out="$out" service/oip/grpc_service.proto
sed -i 's/^import grpc_service_pb2 as/from . import grpc_service_pb2 as/' "$out/grpc_service_pb2_grpc.py"
sed -i 's/^DESCRIPTOR = _descriptor_pool.Default().AddSerializedFile(/DESCRIPTOR = _descriptor_pool.DescriptorPool().AddSerializedFile(/' \
    "$out/grpc_service_pb2.py"
