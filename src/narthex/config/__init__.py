"""The prometheus.yml configuration layer (Prometheus 3.x semantics).

Public API: :func:`load_config`, :func:`load_config_from_string`, :class:`ConfigError`, :class:`Config`
and the section models it is made of.
"""

from narthex.config.errors import ConfigError
from narthex.config.load import load_config, load_config_from_string
from narthex.config.model import (
    AlertingConfig,
    AlertmanagerConfig,
    Config,
    GlobalConfig,
    OTLPConfig,
    ScrapeConfig,
    StorageConfig,
    TracingConfig,
)
from narthex.config.relabel import RelabelConfig
from narthex.config.remote import RemoteReadConfig, RemoteWriteConfig

__all__ = [
    "AlertingConfig",
    "AlertmanagerConfig",
    "Config",
    "ConfigError",
    "GlobalConfig",
    "OTLPConfig",
    "RelabelConfig",
    "RemoteReadConfig",
    "RemoteWriteConfig",
    "ScrapeConfig",
    "StorageConfig",
    "TracingConfig",
    "load_config",
    "load_config_from_string",
]
