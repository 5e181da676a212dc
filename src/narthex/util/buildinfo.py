"""Version text for ``--version`` and ``/api/v1/status/buildinfo``."""

from __future__ import annotations

import functools
import os
import platform
import subprocess

from narthex import __version__


@functools.cache
def revision() -> str:
    """The git commit Narthex runs from, when it runs from a checkout; otherwise ``unknown``."""
    source = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "-C", source, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=2, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def version_text(program: str = "narthex") -> str:
    """Multi-line version text in Prometheus's layout."""
    return (
        f"{program}, version {__version__} (branch: HEAD, revision: {revision()})\n"
        f"  python version:   {platform.python_version()}\n"
        f"  platform:         {platform.system().lower()}/{platform.machine()}\n"
    )
