"""OTLP/gRPC on `serve --otlp-grpc-port`: the stock gRPC exporter (plain and gzip) lands spans on
their run; keys are checked from the `authorization` metadata; partial success as over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf.json_format import ParseDict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2_grpc import TraceServiceStub

from tests.server.conftest import Server, free_port, serve_with_port_taken, start_server
from tests.server.test_otlp import export_and_read, make_spans

pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc.trace_exporter")
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter


@pytest.fixture(scope="module")
def grpc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, int]]:
    port = free_port()
    srv = start_server(tmp_path_factory.mktemp("grpc"), "--otlp-grpc-port", str(port))
    yield srv, port
    srv.stop()


@pytest.mark.parametrize("compression", [grpc.Compression.NoCompression, grpc.Compression.Gzip])
def test_stock_grpc_exporter_lands_on_the_run(grpc_server: tuple[Server, int],
                                              compression: grpc.Compression) -> None:
    srv, port = grpc_server
    spans, tid = make_spans({"service.name": f"grpc-{compression.name}"})
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True,
                                headers=(("authorization", f"Bearer {srv.keys['ingest']}"),),
                                compression=compression)
    events = export_and_read(srv, exporter, spans, tid)
    assert sorted(e["tokens_in"] or 0 for e in events) == [0, 1830]
    assert {e["agent"] for e in events} == {f"grpc-{compression.name}"}
    llm = next(e for e in events if e["tokens_in"])
    assert llm["cost_usd"] == pytest.approx(1830 * 2.5e-6 + 421 * 1e-5)  # gpt-4o 2.50/10.00


def one_span_request(trace_id: bytes) -> ExportTraceServiceRequest:
    import base64

    return ParseDict({"resourceSpans": [{"resource": {"attributes": [
        {"key": "service.name", "value": {"stringValue": "grpc-raw"}}]}, "scopeSpans": [{"spans": [
        {"traceId": base64.b64encode(trace_id).decode(),
         "spanId": base64.b64encode(bytes.fromhex("00000000000000aa")).decode(),
         "name": "x", "startTimeUnixNano": "1740816000000000000"}]}]}]},
        ExportTraceServiceRequest())


def test_keys_and_partial_success(grpc_server: tuple[Server, int]) -> None:
    srv, port = grpc_server
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = TraceServiceStub(channel)  # type: ignore[no-untyped-call]
        good = one_span_request(bytes.fromhex("7b8efff798038103d269b633813fc60c"))
        for metadata, code in (
            ((), grpc.StatusCode.UNAUTHENTICATED),
            ((("authorization", "Bearer atk_nope_nope"),), grpc.StatusCode.UNAUTHENTICATED),
            ((("authorization", f"Bearer {srv.keys['read']}"),), grpc.StatusCode.PERMISSION_DENIED),
        ):
            with pytest.raises(grpc.RpcError) as e:
                stub.Export(good, metadata=metadata, timeout=30)
            assert e.value.code() == code
        auth = (("authorization", f"Bearer {srv.keys['ingest']}"),)
        assert not stub.Export(good, metadata=auth, timeout=30).HasField("partial_success")
        bad = one_span_request(bytes(16))  # an all-zero trace id is no trace id
        res = stub.Export(bad, metadata=auth, timeout=30)
        assert res.partial_success.rejected_spans == 1
        assert "span 0: traceId" in res.partial_success.error_message


def test_grpc_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    busy, res = serve_with_port_taken(tmp_path, "--otlp-grpc-port", "--port", str(free_port()))
    out = res.stdout + res.stderr
    assert res.returncode == 2, out
    assert f"127.0.0.1:{busy} is already in use" in out and "--otlp-grpc-port" in out
    assert "collector on" not in out and "Traceback" not in out
