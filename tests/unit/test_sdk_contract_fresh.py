"""The SDK's generated copy of the contract matches proto/, and the SDK stays independent of the server package."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from types import ModuleType

import grpc

REPO = Path(__file__).resolve().parents[2]
SDK = REPO / "sdk" / "python"


def _load_gen() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gnomon_sdk_gen", SDK / "gen.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_copy_is_fresh() -> None:
    stale = _load_gen().stale_files()
    assert stale == [], f"gnomon_sdk/_proto is stale ({stale}); run `python sdk/python/gen.py`"


def test_descriptors_identical_to_server_contract() -> None:
    # Both copies share protobuf's default pool; that only works while they are byte-identical.
    from gnomon_sdk._proto.gnomon.v1 import collector_pb2, event_pb2

    from gnomon.v1 import collector_pb2 as server_collector
    from gnomon.v1 import event_pb2 as server_event

    assert event_pb2.DESCRIPTOR.serialized_pb == server_event.DESCRIPTOR.serialized_pb
    assert collector_pb2.DESCRIPTOR.serialized_pb == server_collector.DESCRIPTOR.serialized_pb
    event = event_pb2.Event(event_id="e1", name="page_view", client_id="c")
    assert server_event.Event.FromString(event.SerializeToString()).event_id == "e1"


def test_sdk_never_imports_the_server_package() -> None:
    code = (
        "import sys, gnomon_sdk, gnomon_sdk.client, gnomon_sdk.testing, gnomon_sdk.spool\n"
        "bad = sorted(m for m in sys.modules if m == 'gnomon' or m.startswith('gnomon.'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=SDK, timeout=60)


def test_dependencies_are_grpcio_and_protobuf_with_a_floor_matching_the_gencode() -> None:
    project = tomllib.loads((SDK / "pyproject.toml").read_text())["project"]
    deps = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0]: d for d in project["dependencies"]}
    assert set(deps) == {"grpcio", "protobuf"}
    gencode = (SDK / "src" / "gnomon_sdk" / "_proto" / "gnomon" / "v1" / "event_pb2.py").read_text()
    version = r"ValidateProtobufRuntimeVersion\(\s*_runtime_version\.Domain\.PUBLIC,\s*(\d+),\s*(\d+),\s*(\d+)"
    match = re.search(version, gencode)
    assert match is not None
    floor = re.search(r">=\s*([\d.]+)", deps["protobuf"])
    assert floor is not None
    have = tuple(int(x) for x in floor.group(1).split("."))
    assert have >= tuple(int(x) for x in match.groups()), "raise the protobuf floor to the gencode version"


def test_generated_grpc_stub_talks_to_the_fake_collector() -> None:
    from gnomon_sdk._proto.gnomon.v1 import collector_pb2, collector_pb2_grpc, event_pb2
    from gnomon_sdk.testing import FakeCollector

    with FakeCollector(["k"]) as fake, grpc.insecure_channel(fake.endpoint) as channel:
        stub = collector_pb2_grpc.CollectorServiceStub(channel)
        batch = collector_pb2.EventBatch(events=[event_pb2.Event(event_id="a", name="x", client_id="c")], batch_id="b1")
        auth = (("authorization", "Bearer k"),)
        answer = stub.Collect(batch, metadata=auth, timeout=5)
        accepted = [collector_pb2.EVENT_STATUS_ACCEPTED]
        assert (answer.batch_id, answer.accepted, list(answer.statuses)) == ("b1", 1, accepted)
        streamed = list(stub.CollectStream(iter([batch, batch]), metadata=auth, timeout=5))
        assert [r.duplicates for r in streamed] == [1, 1]
