"""``narthex serve``: parse Prometheus's flags and run the server."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence

from narthex.cli.flags import FlagError
from narthex.server.options import OptionsError, build_options, serve_flagset
from narthex.util.buildinfo import version_text
from narthex.util.log import setup_logging
from narthex.web.webconfig import WebConfigError, load_web_config


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def serve_main(argv: Sequence[str]) -> int:
    """Entry point of ``narthex serve``; returns the exit code."""
    flagset = serve_flagset()
    if "--version" in argv:
        sys.stdout.write(version_text())
        return 0
    if any(arg in ("-h", "--help", "--help-long") for arg in argv):
        sys.stdout.write(flagset.usage())
        return 0
    try:
        values, positionals, explicit = flagset.parse(argv)
        if positionals:
            raise FlagError(f"unexpected {positionals[0]}")
        options = build_options(values, explicit)
    except (FlagError, OptionsError) as exc:
        sys.stderr.write(f"Error parsing command line arguments: {exc}\n")
        sys.stderr.write(flagset.usage())
        return 2
    setup_logging(options["log.level"], options["log.format"])
    try:
        web_config = load_web_config(options["web.config.file"])
    except WebConfigError as exc:
        sys.stderr.write(f"Error loading web config file {options['web.config.file']!r}: {exc}\n")
        return 1
    from narthex.server.server import Server

    _install_uvloop()
    return asyncio.run(Server(options, web_config).run())
