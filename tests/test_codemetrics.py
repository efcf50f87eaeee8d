"""Claim 7c's and 7d's measured proxies: radon's figures of each stack's chat code, by job."""

from bench.run.codemetrics import PARTS, framework_names, measure, sign_in_sources


def test_every_part_of_both_stacks_is_measured_from_files_that_exist():
    rows = measure()
    assert {(r["stack"], r["part"]) for r in rows} == set(PARTS)
    for r in rows:
        assert r["files"] == list(PARTS[r["stack"], r["part"]]), "a file the table names is missing"
        assert r["sloc"] > 0 and r["lloc"] > 0 and r["blocks"] > 0 and r["concepts"], r


def test_concepts_are_the_framework_names_imported():
    source = "from fastapi import Depends, WebSocket\nimport sqlalchemy.ext.asyncio\nimport json\nfrom x import y\n"
    assert framework_names(source, ("fastapi", "sqlalchemy")) == {
        "fastapi.Depends", "fastapi.WebSocket", "sqlalchemy.ext.asyncio"}


def test_a_branch_adds_to_the_count(tmp_path):
    for f in {f for files in PARTS.values() for f in files}:
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("def f(x):\n    return x\n")
    flat = {(r["stack"], r["part"]): r["branches"] for r in measure(tmp_path)}
    (tmp_path / "fastapi_chat/auth.py").write_text("def f(x):\n    if x:\n        return 1\n    return 2\n")
    branched = {(r["stack"], r["part"]): r["branches"] for r in measure(tmp_path)}
    assert branched["FastAPI", "sign-in and storage"] == flat["FastAPI", "sign-in and storage"] + 1
    assert branched["Channels", "sign-in and storage"] == flat["Channels", "sign-in and storage"]


def test_the_sign_in_code_of_each_stack_is_kept_verbatim():
    found = sign_in_sources()
    assert "AuthMiddlewareStack" in found["Channels"]["django_chat/asgi.py"]
    assert "django_session" in found["FastAPI"]["fastapi_chat/auth.py"]
