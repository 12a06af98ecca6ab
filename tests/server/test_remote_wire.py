"""The remote client's pure parts: the tagged JSON round-trips every value the API returns,
typed errors keep their class and text, file names stay inside the scratch folder, and the
remote options are read wherever they stand."""

from __future__ import annotations

import datetime as dt
import json
import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alphatrace.cli.remote import split_remote
from alphatrace.client import wire
from alphatrace.client.files import Uploads, safe_name
from alphatrace.errors import GovernanceError, NotFoundError, PolicyError
from alphatrace.ledger.reconcile import ReconcileReport
from alphatrace.market.importer import MarketImportReport
from alphatrace.parse import ParseError
from alphatrace.server.cli_routes import scope_of, unsafe_argument
from alphatrace.store.ingest import IngestReport

scalars = (st.none() | st.booleans() | st.integers() | st.text()
           | st.floats(allow_nan=False)
           | st.sampled_from([math.inf, -math.inf])
           | st.datetimes(timezones=st.just(dt.UTC)) | st.datetimes() | st.dates()
           | st.decimals(allow_nan=False, allow_infinity=False) | st.binary())
keys = st.text() | st.integers() | st.tuples(st.text(), st.text())
values = st.recursive(scalars, lambda inner: (
    st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(keys, inner, max_size=4)), max_leaves=20)


@given(values)
def test_every_value_comes_back_as_it_went(v: Any) -> None:
    text = json.dumps(wire.encode(v))  # plain JSON on the wire
    assert wire.decode(json.loads(text)) == v
    back = wire.decode(json.loads(text))
    assert type(back) is type(v)


def test_nan_and_timezones_survive() -> None:
    out = wire.decode(json.loads(json.dumps(wire.encode([math.nan, dt.datetime(
        2025, 1, 1, 8, tzinfo=dt.timezone(dt.timedelta(hours=2)))]))))
    assert math.isnan(out[0])
    assert out[1] == dt.datetime(2025, 1, 1, 6, tzinfo=dt.UTC) and out[1].utcoffset() == dt.timedelta(hours=2)


def test_a_dict_that_looks_like_a_tag_is_not_read_as_one() -> None:
    tricky = {"$datetime": "2025-01-01T00:00:00", "$report": "IngestReport"}
    assert wire.decode(json.loads(json.dumps(wire.encode(tricky)))) == tricky
    assert wire.decode(wire.encode({"$tuple": [1]})) == {"$tuple": [1]}


def test_reports_are_rebuilt_as_their_class_and_nothing_else_is() -> None:
    reports = [IngestReport(3, 1, 2, 1, {"pnl": 3}),
               ReconcileReport(1, 2, 3, 4, 5, 6, "abc", True),
               MarketImportReport(5, 0, ["BTCUSDT"], 1, 2, 0, 1, [{"file": "x", "why": "y"}])]
    for r in reports:
        assert wire.decode(json.loads(json.dumps(wire.encode(r)))) == r
    with pytest.raises(ValueError, match="unknown report"):
        wire.decode({"$report": "Popen", "fields": {"args": ["sh"]}})
    with pytest.raises(TypeError, match="cannot send a PosixPath"):
        wire.encode(Path("x"))


def test_a_report_from_a_server_of_another_version_keeps_the_fields_both_know() -> None:
    sent = wire.encode(ReconcileReport(1, 2, 3, 4, 5, 6, "abc", False, 7, 1))
    newer = {**sent, "fields": {**sent["fields"], "drift_ms": 12.5}}
    assert wire.decode(newer) == ReconcileReport(1, 2, 3, 4, 5, 6, "abc", False, 7, 1)
    older = {**sent, "fields": {k: v for k, v in sent["fields"].items()
                                if k not in ("rebuilt", "changes")}}
    assert wire.decode(older) == ReconcileReport(1, 2, 3, 4, 5, 6, "abc", False, 0, 0)
    lacking = {**sent, "fields": {k: v for k, v in sent["fields"].items() if k != "runs"}}
    with pytest.raises(ValueError, match="ReconcileReport lacks runs"):
        wire.decode(lacking)


def test_tables_round_trip_with_their_types() -> None:
    t = pa.table({"ts": pa.array([dt.datetime(2025, 1, 1)], pa.timestamp("us", tz="UTC")),
                  "x": [1.5]})
    assert wire.table_of(wire.table_bytes(t)).equals(t)


def test_typed_errors_keep_class_text_and_policy_position() -> None:
    for e in (NotFoundError("unknown run 'x'"), GovernanceError("no"),
              PolicyError("bad value", path="p.yaml", line=3, column=5, suggestion="use 1")):
        back = wire.error_of(json.loads(json.dumps(wire.error_doc(e))))
        assert type(back) is type(e) and str(back) == str(e)
    back = wire.error_of(wire.error_doc(
        PolicyError("bad value", path="p.yaml", line=3, column=5)))
    assert isinstance(back, PolicyError) and (back.path, back.line, back.column) == ("p.yaml", 3, 5)
    # a subclass the caller may not know arrives as its nearest known class
    from alphatrace.errors import InputError

    assert type(wire.error_of(wire.error_doc(ParseError("bad time", "x", "unparsable")))) is InputError


@given(st.text())
def test_a_safe_name_never_leaves_its_folder(name: str) -> None:
    if safe_name(name):
        base = Path("/scratch")
        resolved = (base / name).resolve() if "\x00" not in name else base
        assert resolved == base or base in resolved.parents


def test_names_given_relative_are_kept_and_others_are_rooted(tmp_path: Path) -> None:
    up = Uploads()
    assert up.name_for("events.jsonl") == "events.jsonl"
    assert up.name_for("data/bars") == "data/bars"
    assert up.name_for("/data/ev/pnl.jsonl") == "data/ev/pnl.jsonl"
    assert safe_name(up.name_for("../x/BTCUSDT_1h.parquet"))
    assert up.name_for("../x/BTCUSDT_1h.parquet").endswith("x/BTCUSDT_1h.parquet")
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.jsonl").write_text("{}\n")
    (tmp_path / "d" / "skip.txt").write_text("x")
    from alphatrace.store.lines import expand_paths

    name = up.add(str(tmp_path / "d"), expand_paths)
    assert set(up.files) == {f"{name}/a.jsonl"}
    assert up.local(name) is None  # an input: never written back
    out = up.output(str(tmp_path / "d" / "out.csv"))
    assert up.local(out) == tmp_path / "d" / "out.csv" and name in up.folders


@pytest.mark.parametrize(("argv", "want"), [
    (["ledger", "--url", "http://h:1", "--key", "k"], ("http://h:1", "k", ["ledger"])),
    (["--url=http://h:1", "ledger", "--api-key=k", "--json"], ("http://h:1", "k", ["ledger", "--json"])),
    (["audit", "sign", "--key", "s.pem", "--api-key", "k", "--url", "u"],
     ("u", "k", ["audit", "sign", "--key", "s.pem"])),
    (["--url", "http://h:1", "audit", "sign", "--key", "s.pem"],
     ("http://h:1", None, ["audit", "sign", "--key", "s.pem"])),
    (["--key", "k", "audit", "verify"], (None, "k", ["audit", "verify"])),
    (["ledger"], (None, None, ["ledger"])),
])
def test_remote_options_are_read_wherever_they_stand(
        argv: list[str], want: tuple[Any, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ALPHATRACE_URL", raising=False)
    monkeypatch.delenv("ALPHATRACE_API_KEY", raising=False)
    assert split_remote(argv) == want
    monkeypatch.setenv("ALPHATRACE_URL", "http://env:2")
    monkeypatch.setenv("ALPHATRACE_API_KEY", "envkey")
    url, key, _ = split_remote(argv)
    assert (url, key) == (want[0] or "http://env:2", want[1] or "envkey")


def test_scopes_of_commands() -> None:
    assert scope_of(("ledger",), ["ledger"]) == "read"
    assert scope_of(("ingest",), ["ingest", "x"]) == "ingest"
    assert scope_of(("gates", "evaluate"), ["gates", "evaluate"]) == "admin"
    assert scope_of(("gates", "evaluate"), ["gates", "evaluate", "--dry-run"]) == "read"
    assert scope_of(("quarantine", "clear"), ["quarantine", "clear", "--dry-run"]) == "read"
    # a value that looks like the flag is no dry run: the command would record
    assert scope_of(("gates", "evaluate"), ["gates", "evaluate", "--policy", "--dry-run"]) == "admin"
    assert scope_of(("gates", "evaluate"), ["gates", "evaluate", "--as-of", "--dry-run"]) == "admin"
    assert scope_of(("something", "new"), []) == "admin"  # unknown: the strictest


def test_arguments_naming_server_files_are_refused() -> None:
    for argv in (["ingest", "/etc/passwd"], ["ledger", "--db", "x"], ["ledger", "--db=x"],
                 ["x", "--policy=../p.yaml"], ["x", "~/p"], ["x", "a/../../b"],
                 ["report", "-o/etc/x.html"], ["report", "-o../x.html"]):
        assert unsafe_argument(argv) is not None, argv
    for argv in (["ingest", "events.jsonl", "data/bars"], ["revive", "A", "--reason", "a b"],
                 ["report", "-oreport.html"], ["gates", "evaluate", "--dry-run"],
                 ["ledger", "--since", "2025-01-01T00:00:00Z"], ["market", "resolve", "BTC/USDT"]):
        assert unsafe_argument(argv) is None, argv


def test_decimal_is_exact() -> None:
    assert wire.decode(wire.encode(Decimal("0.1"))) == Decimal("0.1")
