"""The bench's layout is its process map: what runs inside Locust never imports the orchestrator
or the report, the report reads only the run record, and the pure shared modules import no part.
The servers' layout is a stack each: neither stack imports the other (nor the reference), and what they
share (serving/) imports none of them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from bench import ROOT

BENCH = ROOT / "bench"
SHARED = {"bench.record", "bench.ledger", "bench.stats", "bench.message", "bench.targets", "bench.scenarios",
          "bench.cpu"}
# what each part may import from bench (besides itself)
ALLOWED = {
    "load": SHARED,
    "report": {"bench.record", "bench.plan"},
    "plan": {"bench.record"},  # a reader of records, like the report
    "shared": SHARED,
    "run": SHARED | {"bench.load.tally", "bench.harness", "bench.report", "bench.compare.thresholds",
            "bench.compare.repeat",
            "bench.load.framing",  # the hostile storm's clients retry as the bench's members do (retry_wait)
            "bench.load.tls"},  # the runner's https:// probes trust the run's CA as the members do
    "compare": SHARED | {"bench.report.repeats"},  # a reader of records, like the report
    "harness": SHARED | {"bench.load"},  # not the orchestrator's (bench.run), which runs it
}


PACKAGE_ONLY = {"bench.report"}  # allowed as its entry point (write_report), never its modules


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(path: Path) -> str:
    rel = path.relative_to(BENCH).parts
    if rel == ("locustfile.py",):
        return "load"  # Locust's entry point runs in every Locust process
    if rel == ("__main__.py",):
        return "run"  # `python -m bench`
    return rel[0] if len(rel) > 1 else "shared"


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth of the file (lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return found


def bench_imports(path: Path) -> set[str]:
    return {name for name in imports(path) if name == "bench" or name.startswith("bench.")}


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.is_dir() or path.with_suffix(".py").exists()


def allowed(name: str, part: str) -> bool:
    if name == "bench" or (name.count(".") == 1 and not is_module(name)):
        return True  # the package itself and what bench/__init__.py defines (ROOT, locust_command)
    if part != "shared" and (name == f"bench.{part}" or name.startswith(f"bench.{part}.")):
        return True
    if name in PACKAGE_ONLY or (name.rsplit(".", 1)[0] in PACKAGE_ONLY and not is_module(name)):
        return name.rsplit(".", 1)[0] in ALLOWED[part] or name in ALLOWED[part]
    return any(name == a or a.startswith(name + ".") or (name.startswith(a + ".") and a not in PACKAGE_ONLY)
               for a in ALLOWED[part])


def modules() -> list[Path]:
    return sorted(p for p in BENCH.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(BENCH)))
def test_each_module_imports_only_what_its_process_may(path: Path):
    part = part_of(path)
    wrong = sorted(n for n in bench_imports(path) if not allowed(n, part) and not n.startswith(module_name(path)))
    assert not wrong, f"{path.relative_to(ROOT)} ({part}) imports {wrong}; allowed: {sorted(ALLOWED[part])}"


def test_the_rule_catches_a_locust_module_importing_the_orchestrator(tmp_path: Path):
    fake = tmp_path / "sneaky.py"
    fake.write_text("def f():\n    from bench.run.runner import run_step\n")
    assert not allowed(next(iter(bench_imports(fake))), "load")
    assert not allowed("bench.run.serverproc", "load") and not allowed("bench.report.page", "load")
    assert not allowed("bench.ledger", "report") and allowed("bench.record", "report")
    assert allowed("bench.report.write_report", "run") and not allowed("bench.report.capacity", "run")


SERVER_PACKAGES = ("django_chat", "fastapi_chat", "reference_chat", "serving")


def foreign_packages(path: Path, root: Path = ROOT) -> set[str]:
    """The server packages other than its own that `path` imports ("serving" is every stack's to import)."""
    own = path.relative_to(root).parts[0]
    found = {name.split(".")[0] for name in imports(path)} & set(SERVER_PACKAGES)
    return found - {own} - ({"serving"} if own != "serving" else set())


def server_modules() -> list[Path]:
    return sorted(p for package in SERVER_PACKAGES for p in (ROOT / package).rglob("*.py")
                  if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", server_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_stack_imports_another_and_what_they_share_imports_none(path: Path):
    wrong = foreign_packages(path)
    assert not wrong, f"{path.relative_to(ROOT)} imports {sorted(wrong)}: move what both need into serving/"


def test_the_stack_rule_catches_one_stack_importing_the_other(tmp_path: Path):
    for package, source in [("django_chat", "from fastapi_chat import uvicorn_fixes\n"),
                            ("fastapi_chat", "def f():\n    import django_chat.patching\n"),
                            ("serving", "from django_chat.chat.stats import STATS\n")]:
        (tmp_path / package).mkdir()
        fake = tmp_path / package / "sneaky.py"
        fake.write_text(source)
        assert foreign_packages(fake, tmp_path), source
    (tmp_path / "django_chat" / "fine.py").write_text("from serving.stats import ChatStats\n")
    assert not foreign_packages(tmp_path / "django_chat" / "fine.py", tmp_path)
