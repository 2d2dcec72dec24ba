"""/avatar like through the command layer: the attached picture, each refusal as the user reads it."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image

from bot.commands import Attachment, CommandLayer, Invocation, open_services
from tests.bot.commands.recording import RecordingOutbox, event, say
from twinbot.settings import Settings

FOUND = "The face I found in your picture. Keep it as your twin's face with /avatar keep pick:1."


@dataclass
class Upload:
    """A file as a platform offers it: a declared size, and the download it counts when the layer asks."""

    data: bytes
    declared: int | None = None
    fetches: int = 0

    def attachment(self, filename: str = "me.png") -> Attachment:
        async def fetch() -> bytes:
            self.fetches += 1
            return self.data

        return Attachment(filename, len(self.data) if self.declared is None else self.declared, fetch)


def a_picture(fmt: str) -> bytes:
    picture = Image.new("RGB", (160, 120), (30, 40, 60))
    picture.paste((230, 190, 160), (50, 20, 110, 100))
    buffer = io.BytesIO()
    picture.save(buffer, fmt)
    return buffer.getvalue()


async def like(layer: CommandLayer, upload: Upload) -> RecordingOutbox:
    """`/avatar mode:like picture:<upload>` as a slash command's typed options bring it."""
    out = RecordingOutbox()
    await layer.dispatch(Invocation("avatar", {"mode": "like", "picture": upload.attachment()}, event()), out)
    return out


@pytest.fixture
def like_settings(settings: Settings, tiny_face_weights: Path, tiny_encoder_weights: Path) -> Settings:
    return settings.model_copy(update={"avatar_weights": tiny_face_weights,
                                       "avatar_encoder_weights": tiny_encoder_weights})


@pytest.fixture
async def layer(like_settings: Settings) -> AsyncIterator[CommandLayer]:
    async with open_services(like_settings, with_model=False, with_trainer=False) as services:
        layer = CommandLayer(like_settings, services)
        yield layer
        await layer.close()


async def test_a_png_gives_a_face_to_keep_with_pick_1(layer: CommandLayer) -> None:
    out = await like(layer, Upload(a_picture("PNG")))
    assert out.last.text == FOUND and out.last.kind == "info"
    (face,) = out.last.images
    picture = Image.open(io.BytesIO(face.data))
    assert face.mime == "image/png" and picture.format == "PNG" and picture.size == (256, 256)
    refused = await say(layer, "/avatar keep pick:2")
    assert refused.last.kind == "error" and refused.last.text == "pick a number from 1 to 1"
    kept = await say(layer, "/avatar keep pick:1")
    assert kept.last.text == "Kept face 1 as your twin's face." and kept.last.images[0].data == face.data


async def test_a_jpeg_sent_with_the_command_as_its_caption(layer: CommandLayer) -> None:
    """Telegram's photo with the caption `/avatar like`: the picture is the message's attachment."""
    upload = Upload(a_picture("JPEG"))
    out = await say(layer, "/avatar like", attachments=(upload.attachment("photo.jpg"),))
    assert out.last.text == FOUND and upload.fetches == 1


async def test_what_is_not_a_picture_is_refused(layer: CommandLayer) -> None:
    out = await like(layer, Upload(b"name,face\nana,round\n"))
    assert out.last.kind == "error"
    assert out.last.text == "that file is not a picture I can read (PNG, JPEG, WebP or GIF)"


async def test_a_picture_declared_over_the_limit_is_refused_unread(layer: CommandLayer) -> None:
    upload = Upload(a_picture("PNG"), declared=9_000_000)
    out = await like(layer, upload)
    assert out.last.kind == "error" and out.last.text == "that picture is 9.0 MB; the limit is 8.4 MB"
    assert upload.fetches == 0


async def test_like_without_a_picture_says_how(layer: CommandLayer) -> None:
    out = await say(layer, "/avatar like")
    assert out.last.kind == "error" and out.last.text == "Attach a picture: /avatar like picture:<image>"


async def test_like_counts_against_the_avatar_rate_limit(like_settings: Settings) -> None:
    s = like_settings.model_copy(update={"avatars_per_minute": 1})
    async with open_services(s, with_model=False, with_trainer=False) as services:
        layer = CommandLayer(s, services)
        assert (await like(layer, Upload(a_picture("PNG")))).last.text == FOUND
        upload = Upload(a_picture("PNG"))
        out = await like(layer, upload)
        assert "Easy there: too many avatars" in out.last.text and upload.fetches == 0
        await layer.close()
