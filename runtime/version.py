"""The project's version, recorded in every store and submission."""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path


def project_version() -> str:
    """The installed package version, else the one in pyproject.toml beside this package."""
    try:
        return version("convrnn-video")
    except PackageNotFoundError:
        pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
        try:
            return tomllib.loads(pyproject.read_text())["project"]["version"]
        except (OSError, KeyError, ValueError):
            return "unknown"
