"""Guards for this project's patches to its stack: they ride on private internals, so each refuses
to load on any other version of the library it patches than the one it was written and tested for."""

from importlib.metadata import version


def require_versions(patch: str, written_for: dict[str, str]) -> None:
    wrong = {p: version(p) for p, v in written_for.items() if version(p) != v}
    if wrong:
        found = ", ".join(f"{p} {v}" for p, v in wrong.items())
        wanted = ", ".join(f"{p} {written_for[p]}" for p in wrong)
        raise ImportError(f"{patch} patches private internals of {wanted} and refuses to run on {found}: "
                          "check the patch against the new version, then update its written_for")
