"""Shared fixtures of the Terraform tests (run by `make -C terraform test`)."""

from __future__ import annotations

import sys
from pathlib import Path

import hcl2
import pytest

TF_DIR = Path(__file__).resolve().parents[1]
ROOT = TF_DIR.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))


def unquote(value):
    """python-hcl2 keeps the quotes of string literals: '"x"' -> 'x'."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


class Config:
    """The Terraform configuration of terraform/*.tf, parsed with python-hcl2."""

    def __init__(self, directory: Path):
        # *_override.tf (local backend settings) are not part of the configuration under test.
        self.files = sorted(p for p in directory.glob("*.tf") if not p.name.endswith("_override.tf"))
        self.parsed = {}
        for path in self.files:
            with path.open(encoding="utf-8") as fh:
                self.parsed[path.name] = hcl2.load(fh)

    def _blocks(self, kind):
        for doc in self.parsed.values():
            yield from doc.get(kind, [])

    def resources(self, rtype=None):
        """{(type, name): body} of every resource (optionally of one type)."""
        out = {}
        for block in self._blocks("resource"):
            for t, named in block.items():
                for n, body in named.items():
                    if rtype is None or unquote(t) == rtype:
                        out[(unquote(t), unquote(n))] = body
        return out

    def data(self, dtype):
        out = {}
        for block in self._blocks("data"):
            for t, named in block.items():
                for n, body in named.items():
                    if unquote(t) == dtype:
                        out[unquote(n)] = body
        return out

    def variables(self):
        out = {}
        for block in self._blocks("variable"):
            for n, body in block.items():
                out[unquote(n)] = body
        return out

    def locals(self):
        out = {}
        for block in self._blocks("locals"):
            out.update(block)
        return out

    def terraform(self):
        return list(self._blocks("terraform"))


@pytest.fixture(scope="session")
def tf():
    return Config(TF_DIR)
