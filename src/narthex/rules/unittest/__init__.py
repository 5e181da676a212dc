"""``narthex test rules``: promtool's rule unit tests."""
