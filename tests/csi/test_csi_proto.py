"""The wire contract with the real driver: field names and numbers as the driver's service.proto has them,
and generated code that `make proto` reproduces byte for byte."""

from __future__ import annotations

import filecmp
from pathlib import Path

from google.protobuf.descriptor import FieldDescriptor as F

from strongroom.csi.proto.v1alpha1 import service_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
PROTO = Path("strongroom/csi/proto/v1alpha1/service.proto")

# From the driver (provider/v1alpha1/service.proto, driver v1.6.0): message -> field -> (number, type, repeated).
EXPECTED = {
    "VersionRequest": {"version": (1, F.TYPE_STRING, False)},
    "VersionResponse": {
        "version": (1, F.TYPE_STRING, False),
        "runtime_name": (2, F.TYPE_STRING, False),
        "runtime_version": (3, F.TYPE_STRING, False),
    },
    "MountRequest": {
        "attributes": (1, F.TYPE_STRING, False),
        "secrets": (2, F.TYPE_STRING, False),
        "target_path": (3, F.TYPE_STRING, False),
        "permission": (4, F.TYPE_STRING, False),
        "current_object_version": (5, F.TYPE_MESSAGE, True),
    },
    "MountResponse": {
        "object_version": (1, F.TYPE_MESSAGE, True),
        "error": (2, F.TYPE_MESSAGE, False),
        "files": (3, F.TYPE_MESSAGE, True),
    },
    "File": {"path": (1, F.TYPE_STRING, False), "mode": (2, F.TYPE_INT32, False), "contents": (3, F.TYPE_BYTES, False)},
    "ObjectVersion": {"id": (1, F.TYPE_STRING, False), "version": (2, F.TYPE_STRING, False)},
    "Error": {"code": (1, F.TYPE_STRING, False)},
}


def test_messages_match_the_drivers_proto():
    assert pb.DESCRIPTOR.package == "v1alpha1"
    assert set(pb.DESCRIPTOR.message_types_by_name) == set(EXPECTED)
    for message, fields in EXPECTED.items():
        descriptor = pb.DESCRIPTOR.message_types_by_name[message]
        got = {f.name: (f.number, f.type, f.is_repeated) for f in descriptor.fields}
        assert got == fields, message


def test_service_methods_have_the_drivers_full_names():
    service = pb.DESCRIPTOR.services_by_name["CSIDriverProvider"]
    assert service.full_name == "v1alpha1.CSIDriverProvider"
    assert {m.name: (m.input_type.name, m.output_type.name) for m in service.methods} == {
        "Version": ("VersionRequest", "VersionResponse"),
        "Mount": ("MountRequest", "MountResponse"),
    }


def test_generated_code_is_what_make_proto_produces(tmp_path):
    from grpc_tools import protoc

    src = ROOT / "src"
    args = ["protoc", f"-I{src}", f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}", str(src / PROTO)]
    assert protoc.main(args) == 0, "protoc failed"
    for name in ("service_pb2.py", "service_pb2.pyi", "service_pb2_grpc.py"):
        generated = tmp_path / PROTO.parent / name
        committed = src / PROTO.parent / name
        assert filecmp.cmp(generated, committed, shallow=False), f"{committed} is stale: run `make proto`"

