"""The one settings object of twinbot, read from environment variables and `.env`.

It lives in the `twinbot` core package, below every other layer, because the store, the services
and the adapters all read it. Variable names carry no prefix so that the usual names
(`DISCORD_TOKEN`, `TELEGRAM_TOKEN`, `RAY_ADDRESS`) work as operators expect.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated


class SettingsError(Exception):
    """A setting is unknown or invalid; the message is one line naming the variable."""


class Settings(BaseSettings):
    """Everything an operator can configure. `.env.example` documents every field."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="forbid",
        case_sensitive=False,
    )

    # Where everything lives: the SQLite file, adapters, avatars, the converted model cache.
    data_dir: Path = Path("data")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    # Platforms. No token -> that platform is off; no token at all -> the console twin.
    discord_token: SecretStr | None = None
    discord_guild_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    discord_capture_messages: bool = False
    telegram_token: SecretStr | None = None
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    telegram_webhook_port: int = Field(default=8443, ge=1, le=65535)
    console_user: str = "me"
    console_files_dir: Path = Path("console-files")

    # The language twin.
    base_model: str = "bundled"
    model_dtype: Literal["float32", "bfloat16", "int8"] = "int8"
    allow_hub_download: bool = False
    inference_threads: int = Field(default=2, ge=1, le=64)
    adapter_cache_size: int = Field(default=8, ge=1, le=1024)
    max_new_tokens: int = Field(default=60, ge=1, le=512)
    retrieval_examples: int = Field(default=4, ge=0, le=32)
    batch_window_ms: float = Field(default=15.0, ge=0, le=1000)
    max_batch_size: int = Field(default=8, ge=1, le=64)

    # Training.
    trainer_backend: Literal["local", "ray"] = "local"
    start_local_worker: bool = True
    trainer_nice: int = Field(default=10, ge=0, le=19)
    ray_address: str | None = None
    ray_task_cpus: int = Field(default=1, ge=1, le=256)
    shared_adapter_dir: Path | None = None
    train_max_minutes: float = Field(default=5.0, gt=0)
    train_max_steps: int = Field(default=400, ge=1)
    train_epochs: float = Field(default=1.0, gt=0, le=1000)
    min_train_messages: int = Field(default=50, ge=1)
    lora_rank: int = Field(default=8, ge=1, le=256)
    train_checkpoint_seconds: float = Field(default=30.0, gt=0)
    heartbeat_timeout_s: float = Field(default=120.0, gt=0)
    max_queued_jobs: int = Field(default=100, ge=1)

    # Faces.
    avatar_model: Literal["bundled", "photo-noncommercial"] = "bundled"
    avatar_weights: Path | None = None

    # Limits.
    import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_message_chars: int = Field(default=4000, ge=100)
    twin_replies_per_minute: int = Field(default=20, ge=1)
    avatars_per_minute: int = Field(default=6, ge=1)
    trains_per_hour: int = Field(default=3, ge=1)

    # Limits on what one user's data may take: messages kept, and the /export archive's size.
    max_messages_per_user: int = Field(default=200_000, ge=1)
    export_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)

    @field_validator("discord_guild_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        """Accept `DISCORD_GUILD_IDS=1,2,3` as well as a JSON list."""
        if isinstance(value, str):
            return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        return value

    @cached_property
    def db_path(self) -> Path:
        return self.data_dir / "twinbot.sqlite3"

    @cached_property
    def adapter_dir(self) -> Path:
        return self.shared_adapter_dir or self.data_dir / "adapters"

    @cached_property
    def avatar_dir(self) -> Path:
        return self.data_dir / "avatars"

    @cached_property
    def model_cache_dir(self) -> Path:
        return self.data_dir / "models"


def settings_env(settings: Settings, *, with_secrets: bool = False) -> dict[str, str]:
    """The settings as environment variables, so a child process (the trainer) sees the same ones."""
    env: dict[str, str] = {}
    for name, value in settings.model_dump(mode="json").items():
        if value is None or (isinstance(getattr(settings, name), SecretStr) and not with_secrets):
            continue
        if isinstance(getattr(settings, name), SecretStr):
            value = getattr(settings, name).get_secret_value()
        env[name.upper()] = ",".join(map(str, value)) if isinstance(value, list) else str(value)
    return env


def load_settings(**overrides: object) -> Settings:
    """Build the settings, turning pydantic's report into one line that names the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(part) for part in first["loc"]).upper() or "settings"
        if first["type"] == "extra_forbidden":
            raise SettingsError(f"unknown setting {name} (see .env.example)") from None
        raise SettingsError(f"invalid setting {name}: {first['msg']}") from None
