"""The services the commands use, opened together and closed together.

Heavy services (the language model, the face generator, the trainer process) are imported only
when enabled, so `help` or a CLI admin command never pays for torch.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from persona_store import Store
from twinbot.settings import Settings

if TYPE_CHECKING:
    from avatar.service import AvatarService
    from persona.serving.service import TwinService
    from persona.training.jobs import LocalTrainerProcess

log = logging.getLogger(__name__)


class UserDataKeeper(Protocol):
    """Anything that keeps data about a user: it can hand it over and delete it (Red-DiscordBot style)."""

    async def export_user_data(self, user_id: int) -> dict[str, bytes]: ...

    async def delete_user_data(self, user_id: int) -> int: ...


@dataclass
class TrainingFiles:
    """The trainer's files of a user (adapter, checkpoints), exported and deleted through persona.training.jobs."""

    settings: Settings
    store: Store

    async def export_user_data(self, user_id: int) -> dict[str, bytes]:
        from persona.training import jobs

        return await jobs.export_user_data(self.settings, self.store, user_id)

    async def delete_user_data(self, user_id: int) -> int:
        from persona.training import jobs

        return await jobs.delete_user_data(self.settings, self.store, user_id)


@dataclass
class Services:
    """What the command layer talks to; a missing service makes its commands say it is not installed."""

    store: Store
    twins: TwinService | None = None
    avatars: AvatarService | None = None
    trainer: LocalTrainerProcess | None = None
    keepers: dict[str, UserDataKeeper] = field(default_factory=dict)
    """Keepers of files about users, by what they keep (the store's rows are handled by the store)."""


@asynccontextmanager
async def open_services(
    settings: Settings,
    *,
    with_model: bool = True,
    with_avatars: bool = True,
    with_trainer: bool | None = None,
) -> AsyncIterator[Services]:
    """Open the store and the enabled services; close them in reverse order on exit."""
    async with AsyncExitStack() as stack:
        store = await Store.open(settings.db_path, settings.max_queued_jobs, settings.max_messages_per_user)
        stack.push_async_callback(store.close)
        services = Services(store=store, keepers={"twin adapter files": TrainingFiles(settings, store)})
        if with_avatars:
            from avatar.service import AvatarService

            services.avatars = AvatarService(settings, store)
            await services.avatars.start()
            stack.push_async_callback(services.avatars.close)
            services.keepers["avatar files"] = services.avatars
        if with_model:
            from persona.serving.service import TwinService

            services.twins = TwinService(settings, store)
            await services.twins.start()
            stack.push_async_callback(services.twins.close)
        if with_trainer if with_trainer is not None else (with_model and settings.start_local_worker):
            from persona.training.jobs import LocalTrainerProcess

            services.trainer = LocalTrainerProcess(settings)
            await services.trainer.start()
            stack.push_async_callback(services.trainer.stop)
        yield services
