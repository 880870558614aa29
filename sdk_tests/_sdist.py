"""Fetch one SDK release's source distribution and unpack what its test-suite needs."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

# Written into the cache so that git (and ruff, which honours .gitignore) skip it even before the
# repository's own .gitignore lists it.
_IGNORE_EVERYTHING = "# downloaded by sdk_tests/run.py\n*\n"
_DONE_MARKER = ".unpacked"


def _pip() -> list[str]:
    # uv-made virtual environments have no pip of their own; any pip can download an archive.
    if importlib.util.find_spec("pip") is not None:
        return [sys.executable, "-m", "pip"]
    for name in ("pip", "pip3"):
        found = shutil.which(name)
        if found:
            return [found]
    raise SystemExit("pip is needed to download the SDK's sdist: install it (`uv pip install pip`)")


def _download(package: str, version: str, cache: Path) -> Path:
    archive = cache / f"{package}-{version}.tar.gz"
    if archive.exists():
        return archive
    # pip is the ordinary client of the package index; --no-binary picks the sdist, which ships tests/.
    command = [*_pip(), "download", "--quiet", "--no-binary", ":all:", "--no-deps"]
    command += ["--dest", str(cache), f"{package}=={version}"]
    try:
        subprocess.run(command, check=True)
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"could not download the {package} {version} sdist with pip: {exc}") from exc
    if not archive.exists():
        raise SystemExit(f"pip did not save {archive.name} in {cache}")
    return archive


def _unpack(archive: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            parts = Path(member.name).parts
            # The package itself stays out: the tests must import the installed SDK, the one neatlogs
            # patches, not a copy on the rootdir's path.
            if len(parts) < 2 or parts[1] == "src":
                continue
            member.name = str(Path(*parts[1:]))
            members.append(member)
        data_filter = getattr(tarfile, "data_filter", None)  # refuses links out of the tree and devices
        if data_filter is None:
            tar.extractall(partial, members=members)
        else:
            tar.extractall(partial, members=members, filter=data_filter)
    (partial / _DONE_MARKER).write_text(archive.name + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def prepare(package: str, version: str, cache: Path) -> Path:
    """The unpacked sdist of `package` `version` (without `src/`), downloaded into `cache` on first use."""
    cache.mkdir(parents=True, exist_ok=True)
    ignore = cache / ".gitignore"
    if not ignore.exists():
        ignore.write_text(_IGNORE_EVERYTHING)
    target = cache / f"{package}-{version}"
    if not (target / _DONE_MARKER).exists():
        _unpack(_download(package, version, cache), target)
    if not (target / "tests" / "conftest.py").exists():
        raise SystemExit(f"the {package} {version} sdist has no tests/conftest.py; nothing to run")
    return target
