"""An in-tree PEP 517 build backend (pyproject.toml: backend-path = ["_build"]) using the standard library alone.

Why not setuptools: pip builds in an isolated environment and installs the backend into it from an index first;
offline (no PyPI) that fails even where Debian's python3-setuptools is installed, because isolation hides it.
This backend needs nothing, so ``pip install ./clients/python`` works without a network. It builds a pure-Python
wheel of the ``stitching`` package (py.typed and the committed generated modules included), an sdist, and a
PEP 660 editable wheel. Metadata comes from pyproject.toml's [project] table; the version from
stitching/_version.py, which generate.sh derives from the contracts.
"""
from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import zipfile

try:
    import tomllib
except ImportError:  # Python < 3.11: pyproject's build-system requires tomli there
    import tomli as tomllib  # type: ignore[no-redef]

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = "stitching"
SDIST_ITEMS = ["pyproject.toml", "README.md", "generate.sh", "_build", "protos", PACKAGE, "tests", "examples"]
_EPOCH = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same sources give the same wheel


def _project() -> dict:
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        project = dict(tomllib.load(f)["project"])
    with open(os.path.join(ROOT, PACKAGE, "_version.py"), encoding="utf-8") as f:
        project["version"] = re.search(r'^__version__ = "([^"]+)"', f.read(), re.M).group(1)
    return project


def _dist_name(project: dict) -> str:
    return re.sub(r"[-_.]+", "_", project["name"]).lower()


def _metadata(project: dict) -> str:
    lines = ["Metadata-Version: 2.1", f"Name: {project['name']}", f"Version: {project['version']}"]
    if "description" in project:
        lines.append(f"Summary: {project['description']}")
    if "requires-python" in project:
        lines.append(f"Requires-Python: {project['requires-python']}")
    if "license" in project and "text" in project["license"]:
        lines.append(f"License: {project['license']['text']}")
    if project.get("keywords"):
        lines.append(f"Keywords: {','.join(project['keywords'])}")
    for classifier in project.get("classifiers", []):
        lines.append(f"Classifier: {classifier}")
    for label, url in project.get("urls", {}).items():
        lines.append(f"Project-URL: {label}, {url}")
    lines += [f"Requires-Dist: {r}" for r in project.get("dependencies", [])]
    for extra, requirements in project.get("optional-dependencies", {}).items():
        lines.append(f"Provides-Extra: {extra}")
        for r in requirements:
            marker = f"({r.split(';', 1)[1].strip()}) and " if ";" in r else ""
            lines.append(f"Requires-Dist: {r.split(';', 1)[0].strip()}; {marker}extra == \"{extra}\"")
    readme = project.get("readme")
    body = ""
    if isinstance(readme, str):
        lines.append("Description-Content-Type: text/markdown")
        with open(os.path.join(ROOT, readme), encoding="utf-8") as f:
            body = f.read()
    return "\n".join(lines) + "\n\n" + body


def _package_files() -> list[str]:
    out = []
    for root, dirs, files in os.walk(os.path.join(ROOT, PACKAGE)):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        out += [os.path.relpath(os.path.join(root, f), ROOT).replace(os.sep, "/")
                for f in sorted(files) if f.endswith((".py", ".pyi", "py.typed"))]
    return out


def _dist_info_files(project: dict) -> dict[str, bytes]:
    return {
        "METADATA": _metadata(project).encode("utf-8"),
        "WHEEL": b"Wheel-Version: 1.0\nGenerator: stitching-backend (_build/backend.py)\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        "top_level.txt": f"{PACKAGE}\n".encode(),
    }


def _write_wheel(directory: str, project: dict, files: dict[str, bytes]) -> str:
    """A wheel of ``files`` (archive path -> bytes) plus the dist-info with its RECORD."""
    name = _dist_name(project)
    dist_info = f"{name}-{project['version']}.dist-info"
    files = dict(files)
    files.update({f"{dist_info}/{k}": v for k, v in _dist_info_files(project).items()})
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    wheel_name = f"{name}-{project['version']}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(directory, wheel_name), "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            info = zipfile.ZipInfo(path, _EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
    return wheel_name


# --- PEP 517 hooks ------------------------------------------------------------------------------------------------
def get_requires_for_build_wheel(config_settings=None):
    return []


def get_requires_for_build_sdist(config_settings=None):
    return []


def get_requires_for_build_editable(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    project = _project()
    dist_info = f"{_dist_name(project)}-{project['version']}.dist-info"
    os.makedirs(os.path.join(metadata_directory, dist_info), exist_ok=True)
    for name, data in _dist_info_files(project).items():
        with open(os.path.join(metadata_directory, dist_info, name), "wb") as f:
            f.write(data)
    return dist_info


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = {}
    for rel in _package_files():
        with open(os.path.join(ROOT, rel), "rb") as f:
            files[rel] = f.read()
    return _write_wheel(wheel_directory, _project(), files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """PEP 660: a wheel whose .pth puts this folder on sys.path, so edits here take effect without reinstalling."""
    project = _project()
    return _write_wheel(wheel_directory, project, {f"__editable__.{_dist_name(project)}.pth": (ROOT + "\n").encode()})


def build_sdist(sdist_directory, config_settings=None):
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    name = f"{base}.tar.gz"

    def clean(info: tarfile.TarInfo):
        if "__pycache__" in info.name or info.name.endswith(".pyc"):
            return None
        info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
        return info

    with tarfile.open(os.path.join(sdist_directory, name), "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for item in SDIST_ITEMS:
            if os.path.exists(os.path.join(ROOT, item)):
                tar.add(os.path.join(ROOT, item), f"{base}/{item}", filter=clean)
        pkg_info = _metadata(project).encode("utf-8")
        info = tarfile.TarInfo(f"{base}/PKG-INFO")
        info.size, info.mode = len(pkg_info), 0o644
        tar.addfile(info, io.BytesIO(pkg_info))
    return name
