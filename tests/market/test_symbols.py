"""Symbol resolution: aliases (stored and policy), exact, unique prefix, ambiguous, unknown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alphatrace.errors import InputError, NotFoundError, PolicyError
from alphatrace.market.aliases import list_aliases, policy_aliases, remove_alias, set_alias
from alphatrace.market.catalog import resolve, symbols
from alphatrace.market.symbols import symbol_map_sql
from alphatrace.store import Store


def add_markets(store: Store, *names: str, funding_only: tuple[str, ...] = ()) -> None:
    for n in names:
        store.con.execute("INSERT INTO bars VALUES (?, 3600, '2024-01-01', 1, 1, 1, 1, 1)", [n])
    for n in funding_only:
        store.con.execute("INSERT INTO funding VALUES (?, '2024-01-01', 0.0001, NULL)", [n])


def status(store: Store, *names: str, aliases: dict[str, str] | None = None) -> dict[str, tuple[str | None, str]]:
    return {r["symbol"]: (r["resolved"], r["status"]) for r in resolve(store, names, aliases)}


def test_bare_base_asset_maps_to_its_one_market(store: Store) -> None:
    add_markets(store, "BTCUSDT")
    assert status(store, "BTC", "btc", "BTCUSDT") == {
        "BTC": ("BTCUSDT", "prefix"), "btc": ("BTCUSDT", "prefix"), "BTCUSDT": ("BTCUSDT", "exact")}


def test_two_candidates_are_ambiguous_and_listed(store: Store) -> None:
    add_markets(store, "ETHUSDT", "ETHBTC", "BTCUSDT")
    [eth] = resolve(store, ["ETH"])
    assert eth == {"symbol": "ETH", "resolved": None, "status": "ambiguous",
                   "candidates": ["ETHBTC", "ETHUSDT"]}
    assert status(store, "ETHBTC", "SOL") == {"ETHBTC": ("ETHBTC", "exact"), "SOL": (None, "unknown")}


def test_explicit_alias_wins_and_policy_wins_over_stored(store: Store) -> None:
    add_markets(store, "ETHUSDT", "ETHBTC", "BTCUSDT")
    set_alias(store, "ETH", "ETHUSDT")
    set_alias(store, "xbt", "BTCUSDT")
    assert status(store, "ETH", "XBT") == {"ETH": ("ETHUSDT", "alias"), "XBT": ("BTCUSDT", "alias")}
    # An alias beats even an exact market match: it is the user's explicit word.
    set_alias(store, "ETHBTC", "ETHUSDT")
    assert status(store, "ETHBTC") == {"ETHBTC": ("ETHUSDT", "alias")}
    assert status(store, "ETH", aliases={"eth": "ETHBTC"}) == {"ETH": ("ETHBTC", "alias")}


def test_separators_case_and_settle_suffix_are_ignored(store: Store) -> None:
    add_markets(store, "BTCUSDT")
    assert status(store, "btc/usdt", "BTC-USDT", "BTC/USDT:USDT", " btcusdt ") == {
        n: ("BTCUSDT", "exact") for n in ("btc/usdt", "BTC-USDT", "BTC/USDT:USDT", " btcusdt ")}
    assert status(store, "", "///") == {"": (None, "unknown"), "///": (None, "unknown")}


def test_funding_only_symbols_count_as_markets(store: Store) -> None:
    add_markets(store, funding_only=("SOLUSDT",))
    assert status(store, "SOL") == {"SOL": ("SOLUSDT", "prefix")}


def test_symbol_map_sql_keeps_its_contract(store: Store) -> None:
    add_markets(store, "BTCUSDT", "ETHUSDT", "ETHBTC")
    store.con.execute("CREATE TEMP TABLE alpha_syms AS SELECT * FROM (VALUES ('BTC'), ('ETH'), ('BTC'), (NULL)) v(symbol)")
    cur = store.con.execute(symbol_map_sql("alpha_syms") + " ORDER BY alias")
    assert [d[0] for d in cur.description] == ["alias", "symbol", "status"]
    assert cur.fetchall() == [("BTC", "BTCUSDT", "prefix"), ("ETH", None, "ambiguous")]


MARKETS = st.lists(st.text(alphabet="ABEHTUSDC", min_size=2, max_size=7), unique=True, max_size=8)


@pytest.fixture(scope="module")
def shared_store() -> Iterator[Store]:
    with Store(":memory:") as s:
        yield s


@settings(max_examples=100)
@given(markets=MARKETS, wanted=st.text(alphabet="ABEHTUSDC", min_size=1, max_size=4))
def test_resolution_matches_the_rule_computed_in_python(
    shared_store: Store, markets: list[str], wanted: str
) -> None:
    shared_store.con.execute("DELETE FROM bars")
    add_markets(shared_store, *markets)
    [got] = resolve(shared_store, [wanted])
    starts = sorted(m for m in markets if m.startswith(wanted) and m != wanted)
    if wanted in markets:
        assert (got["resolved"], got["status"]) == (wanted, "exact")
    elif len(starts) == 1:
        assert (got["resolved"], got["status"]) == (starts[0], "prefix")
    elif starts:
        assert (got["resolved"], got["status"], got["candidates"]) == (None, "ambiguous", starts)
    else:
        assert (got["resolved"], got["status"]) == (None, "unknown")


def test_alias_storage_rules(store: Store) -> None:
    add_markets(store, "BTCUSDT")
    assert set_alias(store, " xbt ", "btcusdt") == {"alias": "XBT", "symbol": "BTCUSDT", "imported": True}
    assert set_alias(store, "XBT", "BTCUSDC")["imported"] is False  # replaces; not imported yet
    assert list_aliases(store) == [{"alias": "XBT", "symbol": "BTCUSDC"}]
    with pytest.raises(InputError, match="itself an alias of BTCUSDC"):
        set_alias(store, "BITCOIN", "xbt")
    with pytest.raises(InputError, match="is the symbol itself"):
        set_alias(store, "btc/usdt", "BTCUSDT")
    with pytest.raises(InputError, match="no letters or digits"):
        set_alias(store, "//", "BTCUSDT")
    assert remove_alias(store, "xbt") == {"alias": "XBT", "symbol": "BTCUSDC", "removed": True}
    with pytest.raises(NotFoundError, match="no alias 'xbt'"):
        remove_alias(store, "xbt")


def test_policy_aliases_load_and_errors_point_at_the_line(tmp_path: Path) -> None:
    good = tmp_path / "p.yaml"
    good.write_text("market:\n  aliases:\n    XBT: BTCUSDT\n    ETH: ETHUSDT\n")
    assert policy_aliases(good) == {"XBT": "BTCUSDT", "ETH": "ETHUSDT"}
    assert policy_aliases(None) == {}
    bad = tmp_path / "bad.yaml"
    bad.write_text("gates: {}\nmarket:\n  aliasses:\n    XBT: BTCUSDT\n")
    with pytest.raises(PolicyError, match=r"bad\.yaml:3:3: market\.aliasses"):
        policy_aliases(bad)


def test_symbols_catalog(store: Store) -> None:
    store.con.execute("INSERT INTO bars VALUES ('BTCUSDT', 3600, '2024-01-01 00:00', 1, 1, 1, 1, 1), "
                      "('BTCUSDT', 3600, '2024-01-01 01:00', 1, 1, 1, 1, 1), "
                      "('BTCUSDT', 900, '2024-01-01 00:15', 1, 1, 1, 1, 1)")
    store.con.execute("INSERT INTO funding VALUES ('BTCUSDT', '2024-01-01 00:00', 0.0001, NULL), "
                      "('ETHUSDT', '2024-01-01 08:00', 0.0001, NULL)")
    set_alias(store, "XBT", "BTCUSDT")
    got = [(r["symbol"], r["interval"], r["bars"], r["funding"], r["aliases"]) for r in symbols(store)]
    assert got == [("BTCUSDT", "15m", 1, 1, ["XBT"]), ("BTCUSDT", "1h", 2, 1, ["XBT"]),
                   ("ETHUSDT", None, 0, 1, [])]
