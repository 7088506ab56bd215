"""A run's config: typed sections (:mod:`.schema`), resolution (:mod:`.resolve`) and files (:mod:`.files`).

Readers take a :class:`Config` (``cfg.optim.lr``, ``cfg.views.view_policies``, ``cfg.method.loss``); the flat
form (``cfg.as_flat()``) is what YAML files, ``--set`` and a saved ``config.yaml`` hold.
"""

from .errors import ConfigError
from .files import (
    CONFIG_DIR,
    config_from_saved,
    config_name,
    list_configs,
    load_config,
    load_saved_config,
    parse_overrides,
    parse_yaml,
    split_name,
)
from .notes import config_notes
from .resolve import resolve
from .schema import (
    DEFAULTS,
    KEYS,
    SECTIONS,
    Config,
    DataConfig,
    MethodConfig,
    ModelConfig,
    OptimConfig,
    RunConfig,
    ViewsConfig,
    check_keys,
    current_keys,
    format_keys,
    key_help,
    resolved,
)

__all__ = [
    "config_notes",
    "CONFIG_DIR",
    "DEFAULTS",
    "KEYS",
    "SECTIONS",
    "Config",
    "ConfigError",
    "DataConfig",
    "MethodConfig",
    "ModelConfig",
    "OptimConfig",
    "RunConfig",
    "ViewsConfig",
    "check_keys",
    "config_from_saved",
    "config_name",
    "current_keys",
    "format_keys",
    "key_help",
    "list_configs",
    "load_config",
    "load_saved_config",
    "parse_overrides",
    "parse_yaml",
    "resolve",
    "resolved",
    "split_name",
]
