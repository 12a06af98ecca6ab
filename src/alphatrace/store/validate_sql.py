"""Validation of raw JSON lines as one vectorised DuckDB query, generated from the field table.

Why SQL and not a Python loop: json.loads alone caps a Python loop near 460k lines/s on this
hardware, well under the ingest target. The query is layered so each piece of work happens once
per line:

1. `json_transform` parses the line once into a struct of raw JSON fragments (one per known key);
2. each field's typed value is computed once from its fragment (NULL when the JSON type is wrong);
3. kind inference and the error check are cheap comparisons on those typed values; the error
   text (which names the field and what was wrong) is only built for failing lines;
4. identity hash and attrs are computed only for valid lines, attrs only when the line has keys
   beyond the known ones.

The first failing field of a line, in field-table order, becomes its quarantine reason.
"""

from __future__ import annotations

from functools import cache

from alphatrace.events.fields import (
    DIRECTIONS,
    ENVELOPE,
    KINDS,
    SHAPE_MARKERS,
    SPECS,
    TYPE_ALIASES,
    Field,
    Kind,
    all_field_names,
)
from alphatrace.sql import lit as _lit
from alphatrace.sql import range_checks, ts_range_checks

SEP = "\x1f"  # joins field and reason inside one error string
ALL_FIELDS: list[str] = all_field_names()


def _q(name: str) -> str:
    return f'"{name}"'


def _j(name: str) -> str:
    """The raw JSON fragment of a field as text (NULL when absent or JSON null)."""
    return f'CAST(v."{name}" AS VARCHAR)'


def _field_types() -> dict[str, Field]:
    """One Field per name (a name has the same type in every kind that has it)."""
    out: dict[str, Field] = {}
    for kind in KINDS:
        for f in SPECS[kind]:
            prev = out.get(f.name)
            if prev is not None and prev.type != f.type:
                raise RuntimeError(f"field {f.name} has two types: {prev.type}, {f.type}")
            out.setdefault(f.name, f)
    out["type"] = Field("type", "string")
    out["event_id"] = Field("event_id", "string")
    return out


FIELD_TYPES = _field_types()


def _unquoted(j: str) -> str:
    """A JSON string fragment's value; fast path strips the quotes, escapes go to the parser."""
    return f"(CASE WHEN contains({j}, '\\') THEN CAST({j} AS JSON)->>'$' ELSE {j}[2:-2] END)"


def _epoch(x: str) -> str:
    """Epoch seconds, or milliseconds when |x| >= 1e11; NULL outside ±1e14 or non-finite."""
    return (
        f"(CASE WHEN isfinite({x}) AND abs({x}) < 1e11 "
        f"THEN make_timestamp(CAST(round({x} * 1000000) AS BIGINT)) "
        f"WHEN isfinite({x}) AND abs({x}) < 1e14 "
        f"THEN make_timestamp(CAST(round({x} * 1000) AS BIGINT)) END)"
    )


_HORIZON_RE = r"(?i)^\s*([0-9]+(\.[0-9]+)?)\s*([smhdw]?)\s*$"  # units in any case, as parse.parse_duration


def _typed(f: Field) -> str:
    """Layer 2: the typed value of a field from its fragment; NULL if absent or wrong JSON type."""
    j = _j(f.name)
    is_str = f"starts_with({j}, '\"')"
    s = _unquoted(j)
    num = f"TRY_CAST({j} AS DOUBLE)"
    if f.type == "string":
        return f"(CASE WHEN {is_str} THEN {s} END)"
    if f.type == "id":
        return (f"(CASE WHEN {is_str} THEN {s} "
                f"WHEN NOT contains({j}, '.') AND NOT contains(lower({j}), 'e') "
                f"AND TRY_CAST({j} AS HUGEINT) IS NOT NULL THEN {j} END)")
    if f.type in ("number", "integer"):
        return f"(CASE WHEN NOT {is_str} THEN {num} END)"
    if f.type == "timestamp":
        return f"(CASE WHEN {is_str} THEN {_ts_text(s)} ELSE {_epoch(num)} END)"
    if f.type == "direction":
        return f"(CASE WHEN {is_str} THEN upper(trim({s})) END)"
    return f"(CASE WHEN {is_str} THEN {_horizon_text(s)} ELSE {num} END)"


def _ts_text(s: str) -> str:
    """A timestamp from text: numeric text is epoch s/ms, anything else ISO 8601."""
    n = f"TRY_CAST({s} AS DOUBLE)"
    return f"(CASE WHEN {n} IS NOT NULL THEN {_epoch(n)} ELSE TRY_CAST(TRY_CAST({s} AS TIMESTAMPTZ) AS TIMESTAMP) END)"


def _horizon_text(s: str) -> str:
    """Seconds from "8h" / "90m" / "30s" / "2d" / "1w", or from numeric text."""
    unit = f"lower(regexp_extract({s}, '{_HORIZON_RE}', 3))"
    qty = f"TRY_CAST(regexp_extract({s}, '{_HORIZON_RE}', 1) AS DOUBLE)"
    mult = (f"(CASE {unit} WHEN 'm' THEN 60 WHEN 'h' THEN 3600 WHEN 'd' THEN 86400 "
            f"WHEN 'w' THEN 604800 ELSE 1 END)")
    return f"coalesce({qty} * {mult}, TRY_CAST({s} AS DOUBLE))"


def _got(name: str) -> str:
    j = _j(name)
    return (f"(CASE left({j}, 1) WHEN '\"' THEN 'string' WHEN '{{' THEN 'object' "
            f"WHEN '[' THEN 'array' WHEN 't' THEN 'boolean' WHEN 'f' THEN 'boolean' "
            f"ELSE 'number' END)")


def _checks(f: Field) -> list[tuple[str, str]]:
    """(failure condition, reason SQL) in order, over the typed column; the field is present.

    The one statement of the value rules: the exact path names the first failing condition
    (`_field_error`), the fast path clears a line only when none holds (`_value_ok`). Each
    condition reads the typed column alone, so it means the same on both paths.
    """
    x = _q(f.name)
    j = _j(f.name)
    got = f"' (got ' || {_got(f.name)} || ')'"
    shown = f"' (got ' || {j} || ')'"
    out: list[tuple[str, str]] = []
    if f.type == "string":
        out += [(f"{x} IS NULL", f"'must be a string' || {got}"),
                (f"trim({x}) = ''", "'must not be empty'")]
    elif f.type == "id":
        out += [(f"{x} IS NULL", f"'must be a string or an integer' || {got}"),
                (f"trim({x}) = ''", "'must not be empty'")]
    elif f.type in ("number", "integer"):
        out += [(f"{x} IS NULL", f"'must be a number' || {got}"),
                (f"NOT isfinite({x})", f"'must be finite' || {shown}")]
        if f.type == "integer":
            out.append((f"{x} <> floor({x})", f"'must be a whole number' || {shown}"))
    elif f.type == "timestamp":
        out.append((f"{x} IS NULL",
                    f"'cannot parse timestamp ' || {j} || ' (use ISO 8601 or epoch seconds/milliseconds)'"))
        out += ts_range_checks(x, j)
    elif f.type == "direction":
        out += [(f"{x} IS NULL", f"'must be a string' || {got}"),
                (f"{x} NOT IN ({', '.join(_lit(d) for d in DIRECTIONS)})",
                 f"'unknown direction ' || {j} || ' (expected LONG, SHORT or FLAT)'")]
    elif f.type == "horizon":
        out.append((f"{x} IS NULL OR NOT isfinite({x})",
                    f"'cannot parse horizon ' || {j} || ' (use \"8h\", \"90m\", \"30s\", \"2d\" or seconds)'"))
    if f.range is not None:
        out += range_checks(x, f.range, j)
    return out


def _field_error(f: Field) -> str:
    present = f'v."{f.name}" IS NOT NULL'
    head = _lit(f.name + SEP)
    whens = []
    if f.required:
        whens.append(f"WHEN NOT {present} THEN {head} || 'missing required field'")
    for cond, reason in _checks(f):
        whens.append(f"WHEN {present} AND ({cond}) THEN {head} || {reason}")
    return "CASE " + " ".join(whens) + " END"


def _kind_error(kind: Kind) -> str:
    return "coalesce(" + ", ".join(_field_error(f) for f in SPECS[kind]) + ")"


def struct_spec(value_type: str = "JSON") -> str:
    """json_transform target: every known key, as a raw JSON fragment (the exact path) or as
    VARCHAR (the lenient fast path)."""
    return "{" + ", ".join(f'"{k}": "{value_type}"' for k in ALL_FIELDS) + "}"


def _kind_expr(forced: Kind | None) -> str:
    if forced is not None:
        return _lit(forced)
    alias = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in TYPE_ALIASES.items())
    shape = " ".join(
        "WHEN " + " OR ".join(f'v."{m}" IS NOT NULL' for m in markers) + f" THEN {_lit(kind)}"
        for kind, markers in SHAPE_MARKERS
    )
    return (f"(CASE WHEN v IS NULL THEN NULL "
            f"WHEN v.\"type\" IS NOT NULL THEN (CASE lower(trim(coalesce({_q('type')}, ''))) {alias} ELSE '?' END) "
            f"ELSE (CASE {shape} ELSE NULL END) END)")


def _known_present(kind: Kind) -> str:
    """How many of the kind's known keys (and the envelope's) the parsed line holds."""
    known = [f.name for f in SPECS[kind]] + list(ENVELOPE)
    return " + ".join(f'(v."{k}" IS NOT NULL)::INTEGER' for k in known)


def _extra_expr() -> str:
    """True when the line has more top-level keys than its kind's known keys it holds: it has
    attrs, or a key written twice. Counting keys is the one check every line pays; only such
    lines are looked at again (duplicates, attrs)."""
    per_kind = " ".join(f"WHEN {_lit(k)} THEN {_known_present(k)}" for k in KINDS)
    return f"(nkeys > CASE kind {per_kind} END)"


# The first key that repeats an earlier one: JSON parsers disagree on which value wins (DuckDB
# keeps the first, Python the last), so an event with a duplicated key is quarantined on every
# path rather than silently attributed to one of two runs.
_DUPKEY = ("(CASE WHEN extra THEN list_filter(json_keys(line), "
           "lambda k, i: list_position(json_keys(line), k) < i)[1] END)")


def _attrs_expr() -> str:
    """The event minus its kind's known keys, as JSON text, for lines with `extra` keys.

    A key known to another kind is an attr of this one (`model` on an alpha event is kept, as
    any unknown key would be).
    """
    parts = []
    for kind in KINDS:
        known = [f.name for f in SPECS[kind]] + list(ENVELOPE)
        patch = "{" + ", ".join(f'"{k}": null' for k in known) + "}"
        parts.append(f"WHEN {_lit(kind)} THEN NULLIF(CAST(json_merge_patch(line, {_lit(patch)}) "
                     "AS VARCHAR), '{}')")
    return f"(CASE WHEN extra THEN (CASE kind {' '.join(parts)} END) END)"


def _identity_expr() -> str:
    """md5 over the normalised values of the kind's fields and attrs.

    Hashing values, not raw text, makes whitespace, key order of known fields, "long" vs
    "LONG" and ISO vs epoch spellings of the same instant one event.
    """
    parts = []
    for kind in KINDS:
        vals = [_lit(kind)] + [f"coalesce(CAST({_q(f.name)} AS VARCHAR), '')" for f in SPECS[kind]]
        vals.append("coalesce(attrs, '')")
        parts.append(f"WHEN {_lit(kind)} THEN md5(concat_ws(chr(31), {', '.join(vals)}))")
    return f"CASE kind {' '.join(parts)} END"


_WS = "(' ' || chr(9) || chr(10) || chr(13))"  # JSON's whitespace


@cache  # the same text every round, so the statement cache (store/statements.py) finds it
def staged_sql(source: str, forced: Kind | None) -> str:
    """One row per non-blank line: line_no, kind, err ('field<SEP>reason' or NULL), bad_line
    (the raw text, failing lines only), event_id and attrs (valid lines only), and every known
    field typed (`horizon` in seconds)."""
    typed = ", ".join(f"{_typed(FIELD_TYPES[k])} AS {_q(k)}" for k in ALL_FIELDS)
    per_kind = " ".join(f"WHEN {_lit(k)} THEN {_kind_error(k)}" for k in KINDS)
    err = f"""(CASE
  WHEN v IS NULL THEN (CASE WHEN json_valid(line) THEN '{SEP}not a JSON object' ELSE '{SEP}not valid JSON' END)
  WHEN kind IS NULL THEN 'type{SEP}cannot tell the event kind: no "type" field and the shape matches none of telemetry, alpha, pnl'
  WHEN kind = '?' THEN 'type{SEP}unknown type ' || {_j('type')} || ' (expected telemetry, alpha or pnl)'
  WHEN v."event_id" IS NOT NULL AND (event_id_given IS NULL OR trim(event_id_given) = '') THEN 'event_id{SEP}must be a non-empty string'
  WHEN dupkey IS NOT NULL THEN dupkey || '{SEP}duplicate key ' || dupkey
  ELSE CASE kind {per_kind} END END)"""
    names = ", ".join(_q(k) for k in ALL_FIELDS if k not in ("type", "event_id"))
    struct = _lit(struct_spec())
    return f"""
SELECT line_no, kind, err,
       CASE WHEN err IS NOT NULL THEN left(rtrim(line, chr(10) || chr(13)), 4096) END AS bad_line,
       CASE WHEN err IS NULL THEN coalesce(event_id_given, {_identity_expr()}) END AS event_id,
       {names}, attrs
FROM (
  SELECT *, CASE WHEN err IS NULL THEN {_attrs_expr()} END AS attrs
  FROM (
    SELECT *, {err} AS err
    FROM (
     SELECT *, {_DUPKEY} AS dupkey
     FROM (
      SELECT *, {_extra_expr()} AS extra
      FROM (
      SELECT line_no, line, v, {typed}, {_kind_expr(forced)} AS kind,
             {_typed(FIELD_TYPES['event_id'])} AS event_id_given,
             CASE WHEN v IS NOT NULL THEN len(json_keys(line)) END AS nkeys
      FROM (
        SELECT line_no, line,
               CASE WHEN starts_with(line, '{{') THEN try(json_transform(line, {struct}))
                    WHEN starts_with(ltrim(line, {_WS}), '{{') THEN try(json_transform(ltrim(line, {_WS}), {struct}))
               END AS v
        FROM {source}
        WHERE line IS NOT NULL AND (starts_with(line, '{{') OR trim(line, {_WS}) <> '')
      )
      )
     )
    )
  )
)
"""


# ---------------------------------------------------------------------------------------------
# Fast path. Parsing every field as a raw JSON fragment and checking its JSON type costs about
# 2.5 µs a line. Most lines are clean, so they are parsed leniently instead (`json_transform`
# to VARCHAR values: about 0.7 µs) and one regular expression flags every line where a known key
# holds a value of the wrong JSON type (a lenient parse would coerce "12" to 12). Lines that are
# flagged, or that fail any value check, are re-run through the exact query above, which names
# the field and the reason; both paths compute the same typed values, so an event gets the same
# identity whichever path it took.
# ---------------------------------------------------------------------------------------------

_NUMBER_KEYS = sorted(k for k, f in FIELD_TYPES.items() if f.type in ("number", "integer"))
_STRING_KEYS = sorted(k for k, f in FIELD_TYPES.items() if f.type in ("string", "direction"))
_FLEX_KEYS = sorted(k for k, f in FIELD_TYPES.items() if f.type in ("timestamp", "horizon"))

SUSPICIOUS_RE = (
    r'"(' + "|".join(_NUMBER_KEYS) + r')"\s*:\s*[^-0-9n\s]'
    r'|"(' + "|".join(_STRING_KEYS) + r')"\s*:\s*[^"n\s]'
    r'|"run_id"\s*:\s*([^-0-9"n\s]|-?[0-9]+[.eE]|-[^0-9])'
    r'|"(' + "|".join(_FLEX_KEYS) + r')"\s*:\s*[\[{tf]'
)
# Any \u escape flags the line too (an escaped key or value is not seen by the expression). It
# is tested with `contains`, not as one more alternative: an alternative without the leading
# quote makes the expression half as slow again (0.68 instead of 0.45 µs a line).
ESCAPE = "\\u"


def _typed_fast(f: Field) -> str:
    """The typed value from the lenient VARCHAR parse (valid only for lines not flagged)."""
    x = f'v."{f.name}"'
    if f.type in ("string", "id"):
        return x
    if f.type in ("number", "integer"):
        return f"TRY_CAST({x} AS DOUBLE)"
    if f.type == "timestamp":
        return _ts_text(x)
    if f.type == "direction":
        return f"upper(trim({x}))"
    return _horizon_text(x)


def _value_ok(f: Field) -> str:
    """True when the field is absent or present with a valid value: no condition of `_checks`
    holds (a NULL typed value makes the first one true). Whether a required field is there is
    checked apart (`_ok_expr`)."""
    present = f'v."{f.name}" IS NOT NULL'
    bad = " OR ".join(f"({cond})" for cond, _ in _checks(f))
    return f"(NOT {present} OR NOT coalesce({bad}, true))"


def _ok_expr() -> str:
    """Whether the fast path clears a line. Each known field's value rule is stated once, for
    every kind: a key another kind knows is an attr of this one, so a bad value there only
    sends the line to the exact path, which decides (and keeps it). Stating the rules once,
    not once per kind that has the field, leaves less SQL to plan: planning is most of a small
    collector round's cost."""
    rules = dict.fromkeys(_value_ok(f) for k in KINDS for f in SPECS[k])  # one per distinct rule
    required = " ".join(
        f"WHEN {_lit(k)} THEN "
        + " AND ".join(f'v."{f.name}" IS NOT NULL' for f in SPECS[k] if f.required)
        for k in KINDS)
    return (f"(v IS NOT NULL AND NOT suspicious AND kind IS NOT NULL AND kind <> '?' "
            f"AND (v.\"event_id\" IS NULL OR trim(v.\"event_id\") <> '') AND dupkey IS NULL "
            f"AND {' AND '.join(rules)} AND coalesce(CASE kind {required} END, false))")


@cache
def fast_sql(source: str, forced: Kind | None) -> str:
    """Same columns as `staged_sql` plus `ok`; rows with `ok = false` must be re-run exactly."""
    typed = ", ".join(f"{_typed_fast(FIELD_TYPES[k])} AS {_q(k)}" for k in ALL_FIELDS)
    names = ", ".join(_q(k) for k in ALL_FIELDS if k not in ("type", "event_id"))
    struct = _lit(struct_spec("VARCHAR"))
    return f"""
SELECT line_no, kind, NULL::VARCHAR AS err, NULL::VARCHAR AS bad_line,
       CASE WHEN ok THEN coalesce(event_id_given, {_identity_expr()}) END AS event_id,
       {names}, attrs, ok
FROM (
 SELECT *, CASE WHEN ok THEN {_attrs_expr()} END AS attrs
 FROM (
  SELECT *, {_ok_expr()} AS ok
  FROM (
   SELECT *, {_DUPKEY} AS dupkey
   FROM (
    SELECT *, {_extra_expr()} AS extra
    FROM (
    SELECT line_no, line, v, suspicious, {typed}, {_kind_expr(forced)} AS kind,
           v."event_id" AS event_id_given,
           CASE WHEN v IS NOT NULL THEN len(json_keys(line)) END AS nkeys
    FROM (
      SELECT line_no, line,
             CASE WHEN starts_with(line, '{{') THEN try(json_transform(line, {struct})) END AS v,
             regexp_matches(line, {_lit(SUSPICIOUS_RE)}) OR contains(line, {_lit(ESCAPE)})
               AS suspicious
      FROM {source}
      WHERE line IS NOT NULL AND (starts_with(line, '{{') OR trim(line, {_WS}) <> '')
    )
    )
   )
  )
 )
)
"""
