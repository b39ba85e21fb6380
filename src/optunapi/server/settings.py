"""Server settings: flags, then ``OPTUNAPI_*`` environment variables, then these defaults."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """How one server process runs. Built explicitly and handed to ``create_app``."""

    model_config = SettingsConfigDict(env_prefix="OPTUNAPI_")

    config_dir: Path = Field(
        default=Path("config"), description="Where {study}.yaml space files live."
    )
    storage: str = Field(
        default="sqlite:///optunapi.db", description="SQLAlchemy URL of the storage."
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535, description="0 picks a free port.")
    lease_seconds: float = Field(
        default=600.0,
        gt=0,
        description="Lease of a running trial when its study sets none: a trial whose worker "
        "sends no heartbeat, report or tell for this long is failed.",
    )
    reap_interval: float = Field(
        default=1.0, gt=0, description="Seconds between two passes of the lease reaper."
    )
    study_wait: float = Field(
        default=20.0,
        gt=0,
        description="Seconds a request waits for its study while other requests use it (asks "
        "and tells of one study take turns) before a 503.",
    )
    tokens: str = Field(
        default="",
        description="Comma-separated bearer tokens; when any is set, requests need one.",
    )
    tokens_file: Path | None = Field(
        default=None, description="A file of bearer tokens, one per line."
    )
    ssl_certfile: Path | None = Field(default=None, description="TLS certificate (PEM).")
    ssl_keyfile: Path | None = Field(default=None, description="TLS private key (PEM).")
    max_body_bytes: int = Field(
        default=1024 * 1024, gt=0, description="The largest request body accepted (413 above)."
    )
    busy_timeout: float = Field(
        default=2.0, gt=0, description="Seconds a write waits for a busy database before a 503."
    )

    def accepted_tokens(self) -> list[str]:
        """Every configured token (none: the server is open)."""
        tokens = [t.strip() for t in self.tokens.split(",")]
        if self.tokens_file is not None:
            tokens += [line.strip() for line in self.tokens_file.read_text().splitlines()]
        return [t for t in tokens if t and not t.startswith("#")]
