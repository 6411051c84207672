"""The package's build backend (PEP 517, and PEP 660 for editable installs), on the standard
library alone.

The client has no dependency, and building it needs none either: ``pip install ./clients/python``
downloads nothing (a setuptools backend would have pip fetch setuptools, and on older setuptools
``wheel`` too, into its isolated build environment, which fails on a machine without an index).

The metadata is ``pyproject.toml``'s ``[project]`` table (read with ``tomllib`` where Python has it,
3.11+, else with a reader of the few TOML forms that table uses); the wheel holds the import
package named like the distribution, ``swisper_memory``, with every file in it (``py.typed`` too).
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import os
import re
import tarfile
import time
import zipfile
from pathlib import Path
from typing import Any

__all__ = [
    "build_editable",
    "build_sdist",
    "build_wheel",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]

ROOT = Path(__file__).resolve().parent.parent
TAG = "py3-none-any"
# Zip entries need a time; a fixed one (or SOURCE_DATE_EPOCH) makes builds byte-identical.
_EPOCH = max(int(os.environ.get("SOURCE_DATE_EPOCH", "315532800")), 315532800)  # 1980-01-01 at least
_DATE_TIME = time.gmtime(_EPOCH)[:6]


# pyproject.toml


def read_pyproject(path: Path | None = None) -> dict[str, Any]:
    """pyproject.toml as a dict: tomllib where there is one, else ``parse_toml_subset``."""
    text = (path or ROOT / "pyproject.toml").read_text(encoding="utf-8")
    try:
        import tomllib
    except ImportError:
        return parse_toml_subset(text)
    return tomllib.loads(text)


def parse_toml_subset(text: str) -> dict[str, Any]:
    """The TOML this pyproject.toml uses: ``[table]`` headers, and keys set to a basic string, a
    boolean, an integer, an array of those (over several lines) or an inline table of them."""
    document: dict[str, Any] = {}
    table = document
    pending = ""
    for number, raw in enumerate(text.splitlines(), 1):
        line = _strip_comment(raw).strip()
        if not pending and not line:
            continue
        if not pending and line.startswith("["):
            header = re.fullmatch(r"\[\s*([A-Za-z0-9_.\-\" ]+?)\s*\]", line)
            if not header:
                raise ValueError(f"pyproject.toml:{number}: unsupported table header {raw!r}")
            table = document
            for part in header.group(1).split("."):
                table = table.setdefault(part.strip().strip('"'), {})
            continue
        pending = f"{pending} {line}" if pending else line
        if _open_brackets(pending) > 0:
            continue  # an array that goes on over the next lines
        key, separator, value = pending.partition("=")
        if not separator:
            raise ValueError(f"pyproject.toml:{number}: expected key = value, got {raw!r}")
        table[key.strip().strip('"')] = _toml_value(value.strip(), number)
        pending = ""
    if pending:
        raise ValueError("pyproject.toml: an array or inline table is not closed")
    return document


def _strip_comment(line: str) -> str:
    """The line up to a ``#`` outside a string."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"' and (index == 0 or line[index - 1] != "\\"):
            quoted = not quoted
        elif char == "#" and not quoted:
            return line[:index]
    return line


def _open_brackets(text: str) -> int:
    depth, quoted = 0, False
    for index, char in enumerate(text):
        if char == '"' and (index == 0 or text[index - 1] != "\\"):
            quoted = not quoted
        elif not quoted and char in "[{":
            depth += 1
        elif not quoted and char in "]}":
            depth -= 1
    return depth


def _toml_value(value: str, number: int) -> Any:
    """A TOML value of the subset, as Python: inline tables' ``key =`` become ``"key":``."""
    python = re.sub(r'([{,]\s*)([A-Za-z0-9_\-]+)\s*=', r'\1"\2":', value)
    python = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False", python))
    try:
        return ast.literal_eval(python)
    except (SyntaxError, ValueError) as error:
        raise ValueError(f"pyproject.toml:{number}: unsupported value {value!r}") from error


# Metadata


def _project() -> dict[str, Any]:
    project: dict[str, Any] = read_pyproject()["project"]
    if project.get("dependencies"):
        raise ValueError("this backend builds a package without dependencies")
    return project


def _dist_name(project: dict[str, Any]) -> str:
    """The name as in file names: swisper-memory becomes swisper_memory."""
    return re.sub(r"[-_.]+", "_", project["name"]).lower()


def _dist_info(project: dict[str, Any]) -> str:
    return f"{_dist_name(project)}-{project['version']}.dist-info"


def metadata_text(project: dict[str, Any]) -> str:
    """METADATA (core metadata 2.1), README as the long description."""
    lines = [
        "Metadata-Version: 2.1",
        f"Name: {project['name']}",
        f"Version: {project['version']}",
    ]
    if project.get("description"):
        lines.append(f"Summary: {project['description']}")
    license_ = project.get("license")
    if isinstance(license_, dict) and license_.get("text"):
        lines.append(f"License: {license_['text']}")
    elif isinstance(license_, str):
        lines.append(f"License: {license_}")
    if project.get("requires-python"):
        lines.append(f"Requires-Python: {project['requires-python']}")
    lines += [f"Classifier: {classifier}" for classifier in project.get("classifiers", [])]
    readme = project.get("readme")
    description = ""
    if readme:
        lines.append("Description-Content-Type: text/markdown")
        description = (ROOT / readme).read_text(encoding="utf-8")
    return "\n".join(lines) + "\n\n" + description


def _wheel_text() -> str:
    return f"Wheel-Version: 1.0\nGenerator: swisper-memory _build/backend.py\nRoot-Is-Purelib: true\nTag: {TAG}\n"


def _write_metadata(directory: str, project: dict[str, Any]) -> str:
    info = Path(directory) / _dist_info(project)
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text(metadata_text(project), encoding="utf-8")
    (info / "WHEEL").write_text(_wheel_text(), encoding="utf-8")
    return info.name


# Wheels


def _package_files(project: dict[str, Any]) -> list[Path]:
    package = ROOT / _dist_name(project)
    files = [
        path
        for path in sorted(package.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".pyc", ".pyo")
    ]
    if not any(path.name == "__init__.py" for path in files):
        raise ValueError(f"{package} is not a package")
    return files


def _write_wheel(directory: str, entries: list[tuple[str, bytes]], project: dict[str, Any]) -> str:
    info = _dist_info(project)
    entries = entries + [
        (f"{info}/METADATA", metadata_text(project).encode("utf-8")),
        (f"{info}/WHEEL", _wheel_text().encode("utf-8")),
    ]
    record = io.StringIO()
    for name, data in entries:
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode("ascii")
        record.write(f"{name},sha256={digest},{len(data)}\n")
    record.write(f"{info}/RECORD,,\n")
    entries.append((f"{info}/RECORD", record.getvalue().encode("utf-8")))
    filename = f"{_dist_name(project)}-{project['version']}-{TAG}.whl"
    Path(directory).mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(Path(directory) / filename, "w", zipfile.ZIP_DEFLATED) as wheel:
        for name, data in entries:
            entry = zipfile.ZipInfo(name, _DATE_TIME)
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            wheel.writestr(entry, data)
    return filename


def build_wheel(
    wheel_directory: str, config_settings: dict[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    project = _project()
    entries = [(path.relative_to(ROOT).as_posix(), path.read_bytes()) for path in _package_files(project)]
    return _write_wheel(wheel_directory, entries, project)


def build_editable(
    wheel_directory: str, config_settings: dict[str, Any] | None = None, metadata_directory: str | None = None
) -> str:
    """A wheel whose .pth file puts this folder on sys.path: the package imports from the checkout."""
    project = _project()
    _package_files(project)
    pth = (str(ROOT) + "\n").encode("utf-8")
    return _write_wheel(wheel_directory, [(f"__editable__.{_dist_name(project)}.pth", pth)], project)


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    return _write_metadata(metadata_directory, _project())


prepare_metadata_for_build_editable = prepare_metadata_for_build_wheel


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return []


get_requires_for_build_editable = get_requires_for_build_sdist = get_requires_for_build_wheel


# Source distributions


def build_sdist(sdist_directory: str, config_settings: dict[str, Any] | None = None) -> str:
    """A .tar.gz of what building needs: pyproject.toml, the README, this backend and the package."""
    project = _project()
    base = f"{_dist_name(project)}-{project['version']}"
    files = [ROOT / "pyproject.toml", ROOT / "README.md", Path(__file__).resolve(), *_package_files(project)]
    Path(sdist_directory).mkdir(parents=True, exist_ok=True)
    filename = f"{base}.tar.gz"
    with tarfile.open(Path(sdist_directory) / filename, "w:gz", format=tarfile.PAX_FORMAT) as sdist:
        pkg_info = metadata_text(project).encode("utf-8")
        for name, data in [
            (f"{base}/PKG-INFO", pkg_info),
            *((f"{base}/{path.relative_to(ROOT).as_posix()}", path.read_bytes()) for path in files),
        ]:
            entry = tarfile.TarInfo(name)
            entry.size, entry.mtime, entry.mode = len(data), _EPOCH, 0o644
            sdist.addfile(entry, io.BytesIO(data))
    return filename
