"""The package as users install it: ``pip install ./clients/python`` with no package index (the
in-tree build backend needs nothing but the standard library), and the wheel and sdist it builds."""

from __future__ import annotations

import base64
import hashlib
import importlib
import os
import subprocess
import sys
import tarfile
import tempfile
import unittest
import zipfile
from pathlib import Path

import swisper_memory

FOLDER = Path(__file__).resolve().parents[1]


def load_backend():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(FOLDER / "_build"))
    try:
        return importlib.import_module("backend")
    finally:
        sys.path.remove(str(FOLDER / "_build"))


backend = load_backend()


def has_pip() -> bool:
    found = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, check=False)
    return found.returncode == 0


class PipInstallTest(unittest.TestCase):
    @unittest.skipUnless(has_pip(), "no pip for this Python")
    def test_pip_installs_the_folder_without_a_package_index(self) -> None:
        with tempfile.TemporaryDirectory(prefix="swisper-memory-pip-") as target:
            # --isolated: no pip configuration or PIP_* variable (no local mirror); --no-index: no
            # index at all. The build runs in pip's isolated environment, as by default.
            installed = subprocess.run(
                [sys.executable, "-m", "pip", "--isolated", "install", "--no-index", "--no-cache-dir",
                 "--target", target, str(FOLDER)],
                capture_output=True,
                text=True,
                check=False,
                timeout=300,
            )
            self.assertEqual(installed.returncode, 0, installed.stdout + installed.stderr)
            script = (
                "import importlib.metadata as m, os, swisper_memory;"
                "print(os.path.dirname(swisper_memory.__file__));"
                "print(m.version('swisper-memory'));"
                "print(m.metadata('swisper-memory')['Requires-Python']);"
                "print(sorted(os.listdir(os.path.dirname(swisper_memory.__file__))))"
            )
            # Run from the target (not this folder, which holds the sources), with nothing else added.
            env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
            env["PYTHONPATH"] = target
            ran = subprocess.run(
                [sys.executable, "-c", script], cwd=target, env=env, capture_output=True, text=True, check=True
            )
            where, version, requires, files = ran.stdout.splitlines()
            self.assertEqual(Path(where), Path(target) / "swisper_memory")
            self.assertEqual(version, swisper_memory.__version__)
            self.assertEqual(requires, ">=3.9")
            for name in ("__init__.py", "_transport.py", "asyncio.py", "client.py", "errors.py", "py.typed"):
                self.assertIn(repr(name), files)


class BackendTest(unittest.TestCase):
    def test_the_wheel_holds_the_package_and_a_record_of_it(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            name = backend.build_wheel(directory)
            self.assertEqual(name, f"swisper_memory-{swisper_memory.__version__}-py3-none-any.whl")
            with zipfile.ZipFile(Path(directory) / name) as wheel:
                names = wheel.namelist()
                info = f"swisper_memory-{swisper_memory.__version__}.dist-info"
                self.assertIn("swisper_memory/py.typed", names)
                self.assertIn("swisper_memory/client.py", names)
                self.assertFalse([n for n in names if "__pycache__" in n or n.endswith(".pyc")])
                record = wheel.read(f"{info}/RECORD").decode("utf-8").splitlines()
                self.assertEqual(sorted(line.split(",")[0] for line in record), sorted(names))
                for line in record:
                    path, digest, size = line.split(",")
                    if path.endswith("RECORD"):
                        continue
                    data = wheel.read(path)
                    expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                    self.assertEqual((digest, int(size)), (f"sha256={expected}", len(data)), path)
                metadata = wheel.read(f"{info}/METADATA").decode("utf-8")
                self.assertIn("Name: swisper-memory\n", metadata)
                self.assertIn("Requires-Python: >=3.9\n", metadata)
                self.assertIn("Classifier: Typing :: Typed\n", metadata)
                self.assertNotIn("Requires-Dist", metadata)
                self.assertIn("Tag: py3-none-any", wheel.read(f"{info}/WHEEL").decode("utf-8"))

    def test_the_editable_wheel_points_at_this_folder(self) -> None:
        with tempfile.TemporaryDirectory() as directory, zipfile.ZipFile(
            Path(directory) / backend.build_editable(directory)
        ) as wheel:
            self.assertEqual(wheel.read("__editable__.swisper_memory.pth").decode("utf-8"), f"{FOLDER}\n")

    def test_the_sdist_builds_again(self) -> None:
        with tempfile.TemporaryDirectory() as directory:
            name = backend.build_sdist(directory)
            with tarfile.open(Path(directory) / name) as sdist:
                names = sdist.getnames()
            base = f"swisper_memory-{swisper_memory.__version__}"
            for path in ("PKG-INFO", "pyproject.toml", "README.md", "_build/backend.py", "swisper_memory/py.typed"):
                self.assertIn(f"{base}/{path}", names)

    def test_no_build_requirement(self) -> None:
        self.assertEqual(backend.get_requires_for_build_wheel(), [])
        self.assertEqual(backend.read_pyproject()["build-system"]["requires"], [])

    def test_the_fallback_toml_reader_reads_pyproject_as_tomllib_does(self) -> None:
        text = (FOLDER / "pyproject.toml").read_text(encoding="utf-8")
        parsed = backend.parse_toml_subset(text)
        self.assertEqual(parsed["project"]["license"], {"text": "MIT"})
        self.assertEqual(parsed["project"]["dependencies"], [])
        if sys.version_info >= (3, 11):  # before 3.11 there is no tomllib to compare with
            import tomllib

            self.assertEqual(parsed, tomllib.loads(text))
