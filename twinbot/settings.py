"""The one settings object of twinbot, read from environment variables and `.env`.

It lives in the `twinbot` core package, below every other layer, because the store, the services
and the adapters all read it. Variable names carry no prefix so that the usual names
(`DISCORD_TOKEN`, `TELEGRAM_TOKEN`, `RAY_ADDRESS`) work as operators expect.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from typing_extensions import Annotated

_WEBHOOK_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


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
    telegram_webhook_secret: SecretStr | None = Field(default=None, validate_default=True)
    telegram_webhook_port: int = Field(default=8443, ge=1, le=65535)
    console_user: str = "me"
    console_files_dir: Path = Path("console-files")

    # The language twin.
    base_model: str = "bundled"
    model_dtype: Literal["float32", "bfloat16", "int8"] = "int8"
    allow_hub_download: bool = False
    chat_voice: bool = True
    """Merge the shipped chat voice (persona/voice) into the bundled base, so twins start from a person
    chatting rather than an assistant. Only the bundled base has one."""
    inference_threads: int = Field(default=2, ge=1, le=64)
    adapter_cache_size: int = Field(default=8, ge=1, le=1024)
    max_new_tokens: int = Field(default=60, ge=1, le=512)
    reply_messages: int = Field(default=3, ge=1, le=5)
    """The most messages one twin reply may send in a row, when the twin's owner sends bursts."""
    retrieval_examples: int = Field(default=4, ge=0, le=32)
    adapter_strength: float = Field(default=1.5, ge=0, le=4)
    """How strongly replies use the adapter of a twin trained on 2,000 or more lines: above 1 amplifies
    the owner's voice over the shared base's (docs/benchmarks.md: 1.5 against 1.0 and 2.0)."""
    adapter_strength_few_lines: float = Field(default=2.0, ge=0, le=4)
    """The same for a twin of 300 lines or fewer, which learned less (persona/serving/strength.py);
    between the two, the strength falls with the log of the lines."""
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
    avatar_upscaler_weights: Path | None = None
    """The 4× upscaler; unset: the shipped one beside the bundled generator (none for other weights)."""
    avatar_encoder_weights: Path | None = None
    """The encoder behind `/avatar like`; unset: the shipped one beside the bundled generator."""

    # Limits.
    import_max_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    max_message_chars: int = Field(default=4000, ge=100)
    twin_replies_per_minute: int = Field(default=20, ge=1)
    avatars_per_minute: int = Field(default=6, ge=1)
    avatar_picture_max_bytes: int = Field(default=8 * 1024 * 1024, ge=1024)
    avatar_picture_max_pixels: int = Field(default=25_000_000, ge=256)
    trains_per_hour: int = Field(default=3, ge=1)

    # Imports: what reading one export may cost, and how many uploads may wait on disk.
    import_max_string_bytes: int = Field(default=1024 * 1024, ge=1024)
    import_max_seconds: float = Field(default=120.0, gt=0)
    imports_per_hour: int = Field(default=10, ge=1)
    import_uploads_max_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)

    # Serving queue: how many twin replies may wait for the model, in all and per user.
    max_pending_replies: int = Field(default=64, ge=1)
    max_pending_replies_per_user: int = Field(default=1, ge=1)

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

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _check_webhook_secret(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        """A webhook without a secret takes forged updates from anyone who finds its URL, so none starts."""
        problem = webhook_secret_problem(info.data.get("telegram_webhook_url"), value)
        if problem:
            raise ValueError(problem)
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

    @cached_property
    def log_file(self) -> Path:
        """Where the console twin's logs go, so that its terminal shows the conversation only."""
        return self.data_dir / "logs" / "twinbot.log"


def webhook_secret_problem(url: str | None, secret: SecretStr | None) -> str | None:
    """Why this webhook secret cannot serve (missing with a webhook URL, or characters Telegram refuses), or None."""
    if secret is None:
        return "required when TELEGRAM_WEBHOOK_URL is set (Telegram sends it with every update)" if url else None
    if not _WEBHOOK_SECRET.match(secret.get_secret_value()):
        return "may only use A-Z, a-z, 0-9, _ and - (1 to 256 characters)"
    return None


SECRET_FIELDS = tuple(name for name, field in Settings.model_fields.items() if SecretStr in get_args(field.annotation))
"""The credentials among the settings (platform tokens, the webhook secret)."""


def without_secrets(settings: Settings) -> Settings:
    """The settings minus every credential: what processes that talk to no platform (the trainer, Ray tasks) get."""
    return settings.model_copy(update=dict.fromkeys(SECRET_FIELDS))


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
        message = first["msg"].removeprefix("Value error, ")
        raise SettingsError(f"invalid setting {name}: {message}") from None
