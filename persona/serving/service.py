"""The twin service the bot talks to: builds the prompt a twin sees and gets its reply from the worker.

The prompt holds our persona system prompt with the owner's name, a few of the owner's own past
lines most like the new message (full-text search in the store: an "instant twin" even before
training), and the recent conversation. Replies use the owner's adapter when one is trained.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

from persona.serving.worker import AdapterRef, InferenceWorker, Sampling, WorkerBusy
from persona.prompt import Turn, build_prompt_ids
from persona.retrieval import reply_examples
from persona_store import Store, User
from twinbot.settings import Settings

log = logging.getLogger(__name__)

PROMPT_TOKENS = 448


class TwinError(Exception):
    """The twin could not answer; the message is fit for the user."""


@dataclass(frozen=True)
class ReplyRequest:
    owner: User
    speaker_name: str
    text: str
    history: list[Turn]
    platform: str
    chat_id: str
    is_dm: bool


def clean_reply(text: str, owner_name: str) -> str:
    """Trim what the model wrote into one chat message (no echoed 'Name:' prefix, no runaway whitespace)."""
    text = text.strip()
    prefix = re.compile(rf"^\s*{re.escape(owner_name)}\s*:\s*", re.IGNORECASE) if owner_name else None
    if prefix is not None:
        text = prefix.sub("", text)
    # One chat message: the model sometimes goes on to write a second paragraph nobody asked for.
    return text.split("\n\n")[0].strip()


class TwinService:
    def __init__(self, settings: Settings, store: Store, worker: InferenceWorker | None = None) -> None:
        self.settings = settings
        self.store = store
        self.worker = worker or InferenceWorker.from_settings(settings)

    async def start(self) -> None:
        await self.worker.start()

    async def close(self) -> None:
        await self.worker.close()

    async def delete_adapter(self, user_id: int) -> None:
        """Forget the user's adapter in memory (after /forget, or when a new one was trained)."""
        await self.worker.delete_adapter(str(user_id))

    async def adapter_for(self, owner: User) -> AdapterRef | None:
        record = await self.store.adapters.get(owner.id)
        if record is None or not (Path(record.path) / "adapter_config.json").is_file():
            return None
        return AdapterRef(str(owner.id), record.path, record.created_at)

    async def prompt_ids(self, req: ReplyRequest) -> list[int]:
        examples = await reply_examples(self.store, req.owner.id, req.text, self.settings.retrieval_examples,
                                        include_dm=req.is_dm)
        context = [*req.history, Turn(req.speaker_name, req.text, is_owner=False)]
        assert self.worker.tokenizer is not None
        return build_prompt_ids(self.worker.tokenizer, req.owner.display_name, context, examples, PROMPT_TOKENS)

    async def reply(self, req: ReplyRequest) -> str:
        """The twin's answer: never empty; TwinError if the model fails or says nothing twice, WorkerBusy
        if too many replies are waiting."""
        try:
            ids = await self.prompt_ids(req)
            adapter = await self.adapter_for(req.owner)
            for sampling in (Sampling(), Sampling(do_sample=False)):
                text = clean_reply(
                    await self.worker.generate(ids, adapter, self.settings.max_new_tokens, sampling),
                    req.owner.display_name,
                )
                if text:
                    return text
        except WorkerBusy:
            raise
        except Exception as exc:
            log.exception("twin of user %s failed to reply", req.owner.id)
            raise TwinError(f"{req.owner.display_name}'s twin couldn't answer just now; please try again.") from exc
        raise TwinError(f"{req.owner.display_name}'s twin had nothing to say; try saying it differently.")
