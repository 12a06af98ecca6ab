"""Validation of raw JSON lines as one vectorised DuckDB query, generated from the field table.

Why SQL and not a Python loop: json.loads alone caps a Python loop near 460k lines/s on this
hardware, well under the 1M events/s ingest target. Every line is parsed once by
`json_transform` into a struct of raw JSON fragments; typing, bounds, kind inference, identity
hashing and attrs extraction are column expressions over that struct. The first failing field
of a line (in field-table order) becomes its quarantine reason.
"""

from __future__ import annotations

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

SEP = "\x1f"  # joins field and reason inside one error string


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _j(name: str) -> str:
    """The raw JSON fragment of a field (NULL when absent or JSON null)."""
    return f'v."{name}"'


def _jtype(name: str) -> str:
    """JSON type from the fragment's first character: cheaper than re-parsing it."""
    j = _j(name)
    return (
        f"(CASE left({j}, 1) WHEN '\"' THEN 'string' WHEN '{{' THEN 'object' "
        f"WHEN '[' THEN 'array' WHEN 't' THEN 'boolean' WHEN 'f' THEN 'boolean' "
        f"ELSE 'number' END)"
    )


def _str(name: str) -> str:
    j = _j(name)
    # Fast path: no escapes -> strip the quotes; otherwise let the JSON parser unescape.
    return f"(CASE WHEN contains({j}, '\\') THEN {j}->>'$' ELSE {j}[2:-2] END)"


def _num(name: str) -> str:
    return f"TRY_CAST({_j(name)}::VARCHAR AS DOUBLE)"


def _is_int_text(name: str) -> str:
    j = _j(name)
    return f"(NOT regexp_matches({j}::VARCHAR, '[.eE]') OR {_num(name)} = floor({_num(name)}))"


def _ts_expr(name: str) -> str:
    """TIMESTAMP (UTC) from ISO 8601 text or epoch seconds/milliseconds (>= 1e11 means ms)."""
    n = _num(name)
    s = _str(name)
    epoch = (
        "(CASE WHEN abs({x}) >= 1e11 THEN make_timestamp(CAST(round({x} * 1000) AS BIGINT)) "
        "ELSE make_timestamp(CAST(round({x} * 1000000) AS BIGINT)) END)"
    )
    return (
        f"(CASE {_jtype(name)} "
        f"WHEN 'number' THEN {epoch.format(x=n)} "
        f"WHEN 'string' THEN coalesce(TRY_CAST(TRY_CAST({s} AS TIMESTAMPTZ) AS TIMESTAMP), "
        f"{epoch.format(x=f'TRY_CAST({s} AS DOUBLE)')}) END)"
    )


_HORIZON_RE = r"^\s*([0-9]+(\.[0-9]+)?)\s*([smhdw]?)\s*$"


def _horizon_expr(name: str) -> str:
    s = _str(name)
    unit = f"lower(regexp_extract({s}, '{_HORIZON_RE}', 3))"
    qty = f"TRY_CAST(regexp_extract({s}, '{_HORIZON_RE}', 1) AS DOUBLE)"
    mult = (
        f"(CASE {unit} WHEN 'm' THEN 60 WHEN 'h' THEN 3600 WHEN 'd' THEN 86400 "
        f"WHEN 'w' THEN 604800 ELSE 1 END)"
    )
    return (
        f"(CASE {_jtype(name)} WHEN 'number' THEN {_num(name)} "
        f"WHEN 'string' THEN CASE WHEN regexp_matches({s}, '{_HORIZON_RE}') "
        f"THEN {qty} * {mult} END END)"
    )


def typed_expr(f: Field) -> str:
    """The stored value of a field, assuming it validated."""
    if f.type in ("string", "id"):
        if f.type == "id":
            return f"(CASE {_jtype(f.name)} WHEN 'number' THEN {_j(f.name)}::VARCHAR ELSE {_str(f.name)} END)"
        return _str(f.name)
    if f.type == "number":
        return _num(f.name)
    if f.type == "integer":
        return f"TRY_CAST({_num(f.name)} AS BIGINT)"
    if f.type == "timestamp":
        return _ts_expr(f.name)
    if f.type == "direction":
        return f"upper(trim({_str(f.name)}))"
    return _horizon_expr(f.name)


def _checks(f: Field) -> list[tuple[str, str]]:
    """(condition that means failure, reason SQL expression) in order; the field is present."""
    t = _jtype(f.name)
    got = f"' (got ' || {t} || ')'"
    out: list[tuple[str, str]] = []
    if f.type == "string":
        out.append((f"{t} <> 'string'", f"'must be a string' || {got}"))
        out.append((f"trim({_str(f.name)}) = ''", "'must not be empty'"))
    elif f.type == "id":
        out.append(
            (f"{t} NOT IN ('string', 'number') OR ({t} = 'number' AND NOT {_is_int_text(f.name)})",
             f"'must be a string or an integer' || {got}")
        )
        out.append((f"trim({typed_expr(f)}) = ''", "'must not be empty'"))
    elif f.type in ("number", "integer"):
        out.append((f"{t} <> 'number'", f"'must be a number' || {got}"))
        out.append((f"NOT isfinite({_num(f.name)})", f"'must be finite (got ' || {_j(f.name)}::VARCHAR || ')'"))
        if f.type == "integer":
            out.append((f"NOT {_is_int_text(f.name)}", f"'must be a whole number (got ' || {_j(f.name)}::VARCHAR || ')'"))
    elif f.type == "timestamp":
        out.append(
            (f"{t} NOT IN ('string', 'number') OR {typed_expr(f)} IS NULL",
             f"'cannot parse timestamp ' || {_j(f.name)}::VARCHAR || ' (use ISO 8601 or epoch seconds/milliseconds)'")
        )
    elif f.type == "direction":
        out.append((f"{t} <> 'string'", f"'must be a string' || {got}"))
        out.append(
            (f"{typed_expr(f)} NOT IN ({', '.join(_lit(d) for d in DIRECTIONS)})",
             f"'unknown direction ' || {_j(f.name)}::VARCHAR || ' (expected LONG, SHORT or FLAT)'")
        )
    elif f.type == "horizon":
        out.append(
            (f"{typed_expr(f)} IS NULL",
             f"'cannot parse horizon ' || {_j(f.name)}::VARCHAR || ' (use \"8h\", \"90m\", \"30s\", \"2d\" or seconds)'")
        )
    if f.bound != "any" and f.type in ("number", "integer", "horizon"):
        val = _num(f.name) if f.type != "horizon" else typed_expr(f)
        if f.bound == "nonneg":
            out.append((f"{val} < 0", f"'must be >= 0 (got ' || {_j(f.name)}::VARCHAR || ')'"))
        else:
            out.append((f"{val} <= 0", f"'must be > 0 (got ' || {_j(f.name)}::VARCHAR || ')'"))
    return out


def _field_error(f: Field) -> str:
    """One CASE giving 'field<SEP>reason' for the first failing check of this field, or NULL."""
    j = _j(f.name)
    whens = []
    if f.required:
        whens.append(f"WHEN {j} IS NULL THEN {_lit(f.name + SEP)} || 'missing required field'")
    for cond, reason in _checks(f):
        whens.append(f"WHEN {j} IS NOT NULL AND ({cond}) THEN {_lit(f.name + SEP)} || {reason}")
    return "CASE " + " ".join(whens) + " END"


def _kind_error(kind: Kind) -> str:
    return "coalesce(" + ", ".join(_field_error(f) for f in SPECS[kind]) + ")"


def struct_spec() -> str:
    """json_transform target: every known key as a raw JSON fragment."""
    inner = ", ".join(f'"{k}": "JSON"' for k in all_field_names())
    return "{" + inner + "}"


def kind_expr(forced: Kind | None) -> str:
    if forced is not None:
        return _lit(forced)
    alias = " ".join(f"WHEN {_lit(k)} THEN {_lit(v)}" for k, v in TYPE_ALIASES.items())
    shape = " ".join(
        "WHEN " + " OR ".join(f"{_j(m)} IS NOT NULL" for m in markers) + f" THEN {_lit(kind)}"
        for kind, markers in SHAPE_MARKERS
    )
    t = _j("type")
    return (
        f"(CASE WHEN {t} IS NOT NULL THEN "
        f"(CASE lower(trim({_str('type')})) {alias} ELSE '?' END) "
        f"ELSE (CASE {shape} ELSE NULL END) END)"
    )


def attrs_expr() -> str:
    """The event minus its known keys, as JSON; NULL when nothing is left."""
    parts = []
    for kind in KINDS:
        known = [f.name for f in SPECS[kind]] + list(ENVELOPE)
        patch = "{" + ", ".join(f'"{k}": null' for k in known) + "}"
        parts.append(f"WHEN {_lit(kind)} THEN json_merge_patch(line, {_lit(patch)})")
    return f"NULLIF(CASE kind {' '.join(parts)} END, '{{}}')"


def parse_sql(source: str, forced: Kind | None) -> str:
    """Stage 1: one parse per line, kind decided. Columns: line_no, line, v, kind."""
    return f"""
SELECT line_no, line, v, {kind_expr(forced)} AS kind
FROM (SELECT line_no, line,
             CASE WHEN left(ltrim(line), 1) = '{{' THEN try(json_transform(line, {_lit(struct_spec())})) END AS v
      FROM {source})
"""


def check_sql(parsed: str) -> str:
    """Stage 2: the first error of each line as (err_field, err_reason); NULL when valid."""
    per_kind = " ".join(f"WHEN {_lit(k)} THEN {_kind_error(k)}" for k in KINDS)
    err = f"""(CASE
  WHEN v IS NULL THEN (CASE WHEN json_valid(line) THEN '{SEP}not a JSON object' ELSE '{SEP}not valid JSON' END)
  WHEN kind IS NULL THEN 'type{SEP}cannot tell the event kind: no "type" field and the shape matches none of telemetry, alpha, pnl'
  WHEN kind = '?' THEN 'type{SEP}unknown type ' || {_j('type')}::VARCHAR || ' (expected telemetry, alpha or pnl)'
  WHEN {_j('event_id')} IS NOT NULL AND left({_j('event_id')}, 1) <> '"' THEN 'event_id{SEP}must be a string'
  ELSE CASE kind {per_kind} END END)"""
    return f"SELECT line_no, line, v, kind, {err} AS err FROM {parsed}"


def columns_for(kind: Kind) -> list[Field]:
    return list(SPECS[kind])


def rows_sql(checked: str, kind: Kind) -> str:
    """Stage 3: the typed rows of one kind that passed, with event_id and attrs.

    Identity (when no event_id is given) hashes the normalised values, not the raw text, so
    whitespace, key order of known fields, "long" vs "LONG" and ISO vs epoch time of the same
    instant are one event.
    """
    fields = columns_for(kind)
    typed = ", ".join(f'{typed_expr(f)} AS "{f.name}"' for f in fields)
    names = ", ".join(f'"{f.name}"' for f in fields)
    ident = ", ".join(
        [_lit(kind)] + [f"coalesce(CAST(\"{f.name}\" AS VARCHAR), '')" for f in fields] + ["coalesce(CAST(attrs AS VARCHAR), '')"]
    )
    return f"""
SELECT line_no, coalesce(eid_given, md5(concat_ws(chr(31), {ident}))) AS event_id, {names}, attrs
FROM (
  SELECT line_no, {_str('event_id')} AS eid_given, {typed}, {attrs_expr()} AS attrs
  FROM {checked} WHERE err IS NULL AND kind = {_lit(kind)}
)
"""
