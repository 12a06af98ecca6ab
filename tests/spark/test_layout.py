"""Only `alphatrace.engines.spark` may import pyspark, and the areas (ledger, governance,
forensics, metrics) never import the Spark engine: the embedded engine works without it."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "alphatrace"
AREAS = ("ledger", "governance", "forensics", "metrics.py", "scan.py", "store", "server")


def _imports(path: Path) -> set[str]:
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
    return out


def test_only_the_spark_engine_imports_pyspark() -> None:
    spark_dir = SRC / "engines" / "spark"
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if spark_dir not in p.parents
                 and any(m == "pyspark" or m.startswith("pyspark.") for m in _imports(p))]
    assert offenders == []


def test_the_areas_do_not_import_the_spark_engine() -> None:
    offenders = []
    for area in AREAS:
        root = SRC / area
        for p in ([root] if root.is_file() else root.rglob("*.py")):
            if any(m.startswith("alphatrace.engines.spark") for m in _imports(p)):
                offenders.append(str(p.relative_to(SRC)))
    assert offenders == []
