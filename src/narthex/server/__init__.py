"""The ``narthex serve`` composition root: options, components and their lifecycle."""
