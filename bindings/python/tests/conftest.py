"""Shared fixtures: one fast sandbox for the session, and the repository's paths."""

from __future__ import annotations

import json
import pathlib
from typing import Any, Iterator

import pytest

from removebgvideo.testing import Sandbox

REPO = pathlib.Path(__file__).resolve().parents[3]
VIDEO = "https://cdn.removebgvideo.com/uploads/your-video.mp4"


def vectors(name: str) -> Any:
    return json.loads((REPO / "schema" / "vectors" / name).read_text())["vectors"]


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(speed=1000) as running:
        yield running


@pytest.fixture()
def fresh_sandbox() -> Iterator[Sandbox]:
    with Sandbox(speed=1000) as running:
        yield running
