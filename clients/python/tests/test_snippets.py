"""The specification's orchestrator snippet is the same text everywhere it is quoted: in
spec_snippets.py (which the tests run), in the main README's Python section, and (when
``MEMORY_MANAGER_API_SPEC`` names the Memory Manager API specification's file) in the specification
itself, character for character, trailing spaces included; only the import differs."""

from __future__ import annotations

import os
import re
import unittest
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1]
START = "# In orchestrator/core.py\n"
END = "    # ... existing logic ...\n"


def orchestrator_snippet(text: str, where: str) -> str:
    """The snippet's text, from its first comment to its last line."""
    found = re.search(re.escape(START) + r".*?" + re.escape(END), text, re.S)
    if not found:
        raise AssertionError(f"{where} has no orchestrator snippet")
    return found.group(0)


def python_block_with(text: str, marker: str) -> str:
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        if marker in block:
            return str(block)
    raise AssertionError(f"no python block holds {marker!r}")


class SnippetTest(unittest.TestCase):
    def setUp(self) -> None:
        self.tested = orchestrator_snippet(
            (FOLDER / "tests" / "spec_snippets.py").read_text(encoding="utf-8"), "spec_snippets.py"
        )

    def test_the_readme_quotes_the_snippet_the_tests_run(self) -> None:
        block = python_block_with((FOLDER.parents[1] / "README.md").read_text(encoding="utf-8"), START)
        self.assertEqual(orchestrator_snippet(block, "README.md"), self.tested)
        # Before the snippet: its imports, with this package's in place of the specification's.
        self.assertEqual(block[: block.index(START)], "import time\n\nfrom swisper_memory import memory_manager\n\n")

    # Defined only where the specification's file is named (.ci/run names it when the checkout has
    # the specification beside it); a named file that is missing fails.
    if os.environ.get("MEMORY_MANAGER_API_SPEC"):

        def test_the_snippet_is_the_specifications(self) -> None:
            path = os.environ["MEMORY_MANAGER_API_SPEC"]
            block = python_block_with(Path(path).read_text(encoding="utf-8"), START)
            self.assertEqual(orchestrator_snippet(block, path), self.tested)
            self.assertEqual(block[: block.index(START)], "from contract_engine.memory import memory_manager\n\n")
