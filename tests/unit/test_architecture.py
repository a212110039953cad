"""The import rules of the layers, checked on the source (every import, also inside functions)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "smartcli"

# layer -> the layers it may import. "front" is smartcli.index (the front door, exported by the
# package root) and smartcli.usecases (the use cases it delegates to); "base" is errors and defaults; the store knows the models' data types only.
ALLOWED = {
    "cli": {"cli", "root"},
    "front": {"front", "search", "ingest", "store", "models", "models.base", "base", "root"},
    "search": {"search", "store", "models", "models.base", "base", "root"},
    "ingest": {"ingest", "store", "models", "models.base", "base", "root"},
    "store": {"store", "models.base", "base", "root"},
    "models": {"models", "models.base", "base", "root"},
    "base": {"base"},
}
# What the CLI may import besides itself: the package root (Index, its types, errors) and the
# defaults the front door publishes (shown in --help).
FRONT_DOOR = {"smartcli", "smartcli.defaults"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (PACKAGE.parent / relative).with_suffix(".py").exists() or (PACKAGE.parent / relative / "__init__.py").exists()


def imports_of(path: Path) -> set[str]:
    """The smartcli modules ``path`` imports; ``from smartcli import Index`` imports the package root."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "smartcli"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "smartcli":
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if is_module(submodule) else node.module)
    return found


def layer_of(module: str) -> str:
    if module == "smartcli":
        return "root"
    part = module.split(".")[1]
    if part in ("cli", "__main__"):
        return "cli"
    if module == "smartcli.defaults":
        return "root"  # published by the front door; imports nothing
    if part in ("index", "usecases"):
        return "front"
    if part in ("errors", "defaults"):
        return "base"
    if module == "smartcli.models.base":
        return "models.base"
    return part


def graph() -> dict[str, set[str]]:
    return {module_name(path): imports_of(path) - {module_name(path)} for path in PACKAGE.rglob("*.py")}


def test_every_layer_imports_only_what_it_may():
    broken = []
    for module, imported in graph().items():
        mine = layer_of(module)
        allowed = ALLOWED["models" if mine == "models.base" else mine] if mine != "root" else set()
        for other in imported:
            if layer_of(other) not in allowed:
                broken.append(f"{module} ({mine}) imports {other} ({layer_of(other)})")
    assert broken == []


def test_the_cli_uses_only_the_front_door_and_presentation():
    for module, imported in graph().items():
        if layer_of(module) == "cli":
            assert all(other in FRONT_DOOR or layer_of(other) == "cli" for other in imported), (module, imported)
        else:
            assert not any(layer_of(other) == "cli" for other in imported), module


def test_the_package_root_imports_nothing_heavy():
    # Its names load on first use (PEP 562), so `import smartcli` and the CLI's start stay cheap.
    assert imports_of(PACKAGE / "__init__.py") == set()


def test_no_import_cycles():
    edges = graph()
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for other in sorted(edges.get(module, ())):
            if state.get(other) == 1:
                cycles.append(path[path.index(other) :] + [other])
            elif other not in state:
                visit(other, path + [other])
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_engine_messages_name_no_command_line_flag():
    """Engine errors carry kinds; wording for people (flags, commands to run) is the CLI's."""
    flag = __import__("re").compile(r"""f?["'][^"'\n]*(?<![\w-])--[a-z][a-z-]+|`smart [a-z]""")
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if layer_of(module_name(path)) == "cli":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Raise) and node.exc is not None:
                source = ast.unparse(node.exc)
                if flag.search(source):
                    offenders.append(f"{path.name}: {source[:120]}")
    assert offenders == []
