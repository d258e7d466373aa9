"""tests/scale's fixtures (scalekit.py): the users' (tests/outside's client.env) and the inventory's groups."""

from __future__ import annotations

from scalekit import client_env, groups, start_report, user_env

__all__ = ["client_env", "groups", "user_env"]


def pytest_sessionstart(session):  # noqa: ARG001 (pytest hook signature)
    start_report()
