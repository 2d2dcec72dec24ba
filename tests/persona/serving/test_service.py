"""The twin service on a tiny real model: the prompt it builds from the owner's lines, reply cleaning."""

from __future__ import annotations

from pathlib import Path

from persona.serving.service import ReplyRequest, TwinError, TwinService, clean_reply
from persona_store import NewMessage, Store
from twinbot.settings import Settings


def test_clean_reply_drops_an_echoed_name_and_extra_paragraphs() -> None:
    assert clean_reply("  Ana: hi there\n\nAs an AI...", "Ana") == "hi there"
    assert clean_reply("", "Ana") == ""


async def test_service_prompt_uses_the_owners_own_similar_lines_but_not_dm_ones_in_groups(
    settings: Settings, tiny_model_dir: Path
) -> None:
    s = settings.model_copy(update={"base_model": str(tiny_model_dir), "model_dtype": "float32"})
    async with Store.open_context(s) as store:
        ana = await store.users.get_or_create("telegram", "1", "Ana")
        await store.messages.add_many([
            NewMessage(ana.id, "telegram", "g", "1", "Ana", True, 1.0, "pineapple pizza is the best", "live"),
            NewMessage(ana.id, "telegram", "dm", "2", "Ana", True, 2.0, "secret pineapple plans", "live", is_dm=True),
            NewMessage(ana.id, "telegram", "g", "3", "Bo", False, 3.0, "pineapple is gross", "import"),
        ])
        service = TwinService(s, store)
        await service.start()
        try:
            tok = service.worker.tokenizer
            group = ReplyRequest(ana, "Bo", "what about pineapple?", [], "telegram", "g", is_dm=False)
            text = tok.decode(await service.prompt_ids(group))
            assert "pineapple pizza is the best" in text and "secret pineapple" not in text
            assert "pineapple is gross" not in text  # other people's lines are never the owner's voice
            dm = ReplyRequest(ana, "Ana", "pineapple?", [], "telegram", "dm", is_dm=True)
            assert "secret pineapple plans" in tok.decode(await service.prompt_ids(dm))
            try:
                reply = await service.reply(group)
                assert reply.strip() == reply and reply
            except TwinError as exc:  # a random toy model may only emit end-of-turn: said plainly
                assert "Ana's twin" in str(exc)
        finally:
            await service.close()
