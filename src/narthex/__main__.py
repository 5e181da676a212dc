"""``python -m narthex``."""

from narthex.cli.main import entry

entry()
