"""What each stack's chat took to write (claim 7c, clarity; 7d, authentication), measured with radon
rather than counted by hand: lines, logical lines, branches (cyclomatic complexity) and the
framework names a newcomer must learn (the distinct names imported from the stack's packages).

The files are grouped by the job they do, so the same job is compared on both stacks. Code that
only this benchmark needs (/stats counters, launchers, fixes to stock servers, the Redis scale-out)
is not chat code and is left out.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TypedDict

from radon.complexity import cc_visit
from radon.raw import analyze

from bench import ROOT

# (stack, part) -> the files that do it
PARTS: dict[tuple[str, str], tuple[str, ...]] = {
    ("Channels", "relay chat"): ("django_chat/chat/consumers.py", "django_chat/chat/routing.py",
                                 "django_chat/asgi.py", "django_chat/chat/origin.py"),
    ("Channels", "sign-in and storage"): ("django_chat/chat/app_consumer.py", "django_chat/chat/models.py",
                                          "django_chat/chat/store.py", "django_chat/chat/views.py",
                                          "django_chat/urls.py"),
    ("FastAPI", "relay chat"): ("fastapi_chat/app.py", "fastapi_chat/fanout.py", "fastapi_chat/broadcast/base.py",
                                "fastapi_chat/broadcast/memory.py"),
    ("FastAPI", "sign-in and storage"): ("fastapi_chat/auth.py", "fastapi_chat/db.py"),
}
# what signs a member in on each stack (claim 7d): shown side by side in the report
SIGN_IN = {"Channels": ("django_chat/asgi.py", "django_chat/chat/views.py"),
           "FastAPI": ("fastapi_chat/auth.py",)}
# the packages whose names count as concepts of each stack
FRAMEWORK = {"Channels": ("channels", "django", "asgiref"), "FastAPI": ("fastapi", "starlette", "sqlalchemy")}


class PartRow(TypedDict):
    """One row of `measure`: the fields of bench.record.CodePart."""

    stack: str
    part: str
    files: list[str]
    sloc: int
    lloc: int
    comments: int
    branches: int
    blocks: int
    concepts: list[str]


def measure(root: Path = ROOT) -> list[PartRow]:
    """One row per (stack, part): files, lines of code, logical lines, comments, branches, functions and
    classes, and the framework names it imports (`concepts`)."""
    rows: list[PartRow] = []
    for (stack, part), files in PARTS.items():
        present = [f for f in files if (root / f).exists()]
        sloc = lloc = comments = branches = blocks = 0
        concepts: set[str] = set()
        for f in present:
            source = (root / f).read_text()
            raw = analyze(source)
            sloc, lloc, comments = sloc + raw.sloc, lloc + raw.lloc, comments + raw.comments + raw.multi
            found = cc_visit(source)
            blocks += len(found)
            branches += sum(b.complexity - 1 for b in found)  # decisions beyond the straight path
            concepts |= framework_names(source, FRAMEWORK[stack])
        rows.append({"stack": stack, "part": part, "files": present, "sloc": sloc, "lloc": lloc,
                     "comments": comments, "branches": branches, "blocks": blocks, "concepts": sorted(concepts)})
    return rows


def framework_names(source: str, packages: tuple[str, ...]) -> set[str]:
    """"module.name" for every name imported from one of `packages` (a module imported whole counts once)."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in packages:
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.split(".")[0] in packages}
    return names


def sign_in_sources(root: Path = ROOT) -> dict[str, dict[str, str]]:
    """stack -> {file: source} of the code that signs members in."""
    return {stack: {f: (root / f).read_text() for f in files if (root / f).exists()}
            for stack, files in SIGN_IN.items()}
