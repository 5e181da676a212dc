"""Narthex: a Prometheus-compatible monitoring system written in Python."""

__version__ = "0.1.0"
