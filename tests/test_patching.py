"""The patches to daphne, uvicorn and channels-redis refuse to load on a library version they were not written for."""

import pytest

from serving.versions import require_versions


def test_a_patch_loads_on_the_version_it_was_written_for():
    from importlib.metadata import version

    require_versions("patch", {"daphne": version("daphne")})


def test_a_patch_refuses_another_version_and_names_both():
    with pytest.raises(ImportError, match=r"daphne 0\.0\.1 .* refuses to run on daphne 4\."):
        require_versions("django_chat.daphne_fixes", {"daphne": "0.0.1"})


@pytest.mark.parametrize("target, patches", [
    ("django", ("django_chat/daphne_fixes.py",)),
    ("django-redis", ("django_chat/daphne_fixes.py", "django_chat/chat/redis_layers.py")),
    ("fastapi", ("serving/uvicorn_fixes.py",)),
    ("django-uvicorn", ("serving/uvicorn_fixes.py",)),
    ("reference", ()),
])
def test_targets_say_which_patches_they_run_on(target, patches):
    from bench import ROOT
    from bench.targets import TARGETS

    assert TARGETS[target].patched == patches
    assert all((ROOT / p).exists() for p in patches)
