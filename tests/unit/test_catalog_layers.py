"""Issue 22: the catalog's schema has one home and its SQLite connection one owner, checked on
the source: only smartcli/store/catalog/schema.py issues DDL, and nothing outside
smartcli/store/catalog/ (in the package or the benchmarks) touches a store's ``.conn``."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "smartcli"
CATALOG = PACKAGE / "store" / "catalog"
SCHEMA = CATALOG / "schema.py"
DDL = re.compile(r"\b(CREATE|ALTER|DROP)\s+(TABLE|INDEX|UNIQUE\s+INDEX|VIEW|TRIGGER)\b", re.IGNORECASE)


def sources(*folders: Path) -> list[Path]:
    return sorted(path for folder in folders for path in folder.rglob("*.py"))


def docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def ddl_in(path: Path) -> list[str]:
    """The SQL strings (f-string parts included, docstrings left out) of ``path`` that create,
    alter or drop a table, index, view or trigger."""
    tree = ast.parse(path.read_text())
    skip = docstrings(tree)
    return [
        node.value[:60]
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip and DDL.search(node.value)
    ]


def conn_uses(path: Path) -> list[int]:
    return [node.lineno for node in ast.walk(ast.parse(path.read_text())) if isinstance(node, ast.Attribute) and node.attr == "conn"]


def test_only_the_schema_module_issues_ddl():
    assert ddl_in(SCHEMA), "the check finds the schema's own tables"
    offenders = {str(path.relative_to(ROOT)): ddl_in(path) for path in sources(PACKAGE, ROOT / "benchmarks") if path != SCHEMA}
    assert {path: found for path, found in offenders.items() if found} == {}


def test_only_the_catalog_package_touches_the_connection():
    assert conn_uses(CATALOG / "store.py"), "the check finds the Store's own connection"
    offenders = {
        str(path.relative_to(ROOT)): conn_uses(path) for path in sources(PACKAGE, ROOT / "benchmarks") if CATALOG not in path.parents
    }
    assert {path: lines for path, lines in offenders.items() if lines} == {}
