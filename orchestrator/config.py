"""config.toml loaded into typed, validated, frozen objects (the keys are a contract, see DESIGN.md).

A bad config is refused here, before anything is touched, with one message that names the file,
the key and what is allowed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr, ValidationError, model_validator

# The messages for a refused config live in config_errors.py; re-exported for the modules that use them.
from orchestrator.config_errors import describe_validation_error, did_you_mean  # noqa: F401
from orchestrator.config_sections import (  # noqa: F401  (re-exported: callers import them from here)
    DEFAULT_MIGRATIONS,
    ENGINE_VERSION,
    BastionConfig,
    ConsumerConfig,
    DatabaseConfig,
    Dialect,
    NetworkConfig,
    ProjectConfig,
    SandboxConfig,
    StreamConfig,
    TableConfig,
    _Section,
)
from orchestrator.errors import ConfigError


class Config(_Section):
    project: ProjectConfig = ProjectConfig()
    network: NetworkConfig = NetworkConfig()
    database: DatabaseConfig = DatabaseConfig()
    bastion: BastionConfig
    consumer: ConsumerConfig = ConsumerConfig()
    stream: StreamConfig
    sandbox: SandboxConfig = SandboxConfig()

    _source: Path = PrivateAttr(default=Path("config.toml"))

    @model_validator(mode="after")
    def _bastion_mode_needs_attach(self) -> Config:
        if self.bastion.mode != "create" and self.database.cluster is None:
            raise ValueError(f"[bastion] mode = {self.bastion.mode!r} needs [database] cluster: a cluster of ours is "
                             "private and reached through our bastion (mode = \"create\")")
        return self

    @property
    def attached(self) -> bool:
        """`up` attaches to an existing cluster rather than creating one."""
        return self.database.cluster is not None

    @property
    def applies_migrations(self) -> bool:
        """An attached cluster already holds its schema: migrations run there only when named."""
        return not self.attached or self.database.migrations is not None or self.database.schema_file is not None

    @property
    def source(self) -> Path:
        """The file this config was read from."""
        return self._source

    @property
    def migrations_path(self) -> Path:
        """The migrations folder, or the single `schema` file (migration version 1)."""
        where = self.database.schema_file or self.database.migrations or DEFAULT_MIGRATIONS
        return (self._source.parent / where).resolve()

    @property
    def consumer_source_path(self) -> Path | None:
        """Your own consumer's folder, or None for the shipped logging consumer."""
        if self.consumer.source is None:
            return None
        return (self._source.parent / self.consumer.source).resolve()

    @property
    def bastion_key_path(self) -> Path:
        return (self._source.parent / (self.bastion.key_path or "")).expanduser().resolve()

    @property
    def ca_bundle_path(self) -> Path | None:
        if self.database.ca_bundle is None:
            return None
        return (self._source.parent / self.database.ca_bundle).resolve()

    @property
    def owner_tag(self) -> dict[str, str]:
        """The ownership tag every stack and resource carries; `down` refuses stacks without it."""
        return {"rds-streams:project": self.project.name}

    def stack_name(self, stack: str) -> str:
        return f"{self.project.name}-{stack}"


def load_config(path: Path | str) -> Config:
    """Read and validate `path`; raise ConfigError (exit 2) naming the file and key on any problem."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file", hint="pass --config PATH or create config.toml") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_config(raw, path)


def parse_config(raw: dict[str, Any], path: Path) -> Config:
    try:
        config = Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(describe_validation_error(err, path)) from None
    config._source = path.resolve()
    if config.ca_bundle_path is not None and not config.ca_bundle_path.is_file():
        raise ConfigError(f"{path}: [database] ca_bundle: file {config.database.ca_bundle!r} not found "
                          f"(looked at {config.ca_bundle_path})",
                          hint="download it from https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem")
    if config.database.schema_file is not None and not config.migrations_path.is_file():
        raise ConfigError(
            f"{path}: [database] schema: file {config.database.schema_file!r} not found "
            f"(looked at {config.migrations_path}); give a path relative to the config file"
        )
    _check_consumer_source(config, path)
    if config.bastion.key_path is not None and not config.bastion_key_path.is_file():
        raise ConfigError(f"{path}: [bastion] key_path: file {config.bastion.key_path!r} not found "
                          f"(looked at {config.bastion_key_path}); give a path relative to the config file")
    if not config.applies_migrations:
        return config
    from orchestrator.database.migrations import migration_files

    migration_files(config)  # a malformed migrations folder is a config error: refused before anything runs
    return config


def _check_consumer_source(config: Config, path: Path) -> None:
    folder = config.consumer_source_path
    if folder is None or config.consumer.handler is None:
        return
    if not folder.is_dir():
        raise ConfigError(f"{path}: [consumer] source: folder {config.consumer.source!r} not found (looked at {folder}); "
                          "give the folder holding your handler, relative to the config file")
    module = config.consumer.handler.rsplit(".", 1)[0].replace(".", "/")
    if not ((folder / f"{module}.py").is_file() or (folder / module / "__init__.py").is_file()):
        raise ConfigError(f"{path}: [consumer] handler: {config.consumer.handler!r} names module {module}.py, "
                          f"which is not in {folder}; give module.function of a file in the source folder")

