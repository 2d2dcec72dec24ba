"""Faces as users get them: PNG/GIF validity, determinism, stable faces across restarts, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
import io
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from avatar.service import AvatarError, AvatarService
from persona_store import Store, open_store
from twinbot.settings import Settings


@pytest.fixture
def face_settings(settings: Settings, tiny_run: Path) -> Settings:
    return settings.model_copy(update={"avatar_weights": tiny_run / "generator.pt"})


def image(data: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(data))
    picture.load()
    return picture


async def test_random_faces_are_pngs_seeded_and_deterministic(face_settings: Settings) -> None:
    service = AvatarService(face_settings, None)
    await service.start()
    a = await service.random_face(style="pixel-art", seed=7)
    b = await service.random_face(style="pixel-art", seed=7)
    c = await service.random_face(style="pixel-art", seed=8)
    assert a.mime == "image/png" and a.data == b.data and a.data != c.data
    picture = image(a.data)
    assert picture.format == "PNG" and picture.size == (256, 256)
    # Pixel art is upscaled with nearest neighbour: blocks of identical pixels.
    pixels = picture.convert("RGB")
    assert pixels.getpixel((0, 0)) == pixels.getpixel((3, 3))


async def test_bad_style_is_a_clear_error(face_settings: Settings) -> None:
    service = AvatarService(face_settings, None)
    await service.start()
    with pytest.raises(AvatarError, match="unknown style 'vaporwave'; choose one of: lorelei, pixel-art"):
        await service.random_face(style="vaporwave")


async def test_corrupt_weights_fail_at_start(face_settings: Settings, tmp_path: Path) -> None:
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"\x00" * 100)
    service = AvatarService(face_settings.model_copy(update={"avatar_weights": broken}), None)
    with pytest.raises(AvatarError, match="broken.pt"):
        await service.start()


async def test_a_twins_face_is_stable_across_restarts_until_renewed(face_settings: Settings) -> None:
    async with open_store(face_settings.db_path) as store:
        user = await store.users.get_or_create("console", "ana", "Ana")
        service = AvatarService(face_settings, store)
        await service.start()
        first = await service.own_face(user.id)
        assert (await service.own_face(user.id)).data == first.data
    async with open_store(face_settings.db_path) as store:
        service = AvatarService(face_settings, store)
        await service.start()
        assert (await service.own_face(user.id)).data == first.data
        icon = image(await service.own_face_png(user.id))
        assert icon.size == (64, 64)
        renewed = await service.own_face(user.id, renew=True)
        assert renewed.data != first.data
        assert (await service.own_face(user.id)).data == renewed.data


async def test_variations_grid_then_keep_one(face_settings: Settings) -> None:
    async with open_store(face_settings.db_path) as store:
        user = await store.users.get_or_create("console", "ana", "Ana")
        service = AvatarService(face_settings, store)
        await service.start()
        before = (await store.avatars.get(user.id)) or None
        sheet = image((await service.variations(user.id)).data)
        assert sheet.size == (2 * 256 + 3 * 4, 2 * 256 + 3 * 4)
        kept = await service.keep_variation(user.id, 3)
        record = await store.avatars.get(user.id)
        assert before is None and record is not None
        assert (await service.own_face(user.id)).data == kept.data
        with pytest.raises(AvatarError, match="ask for /avatar variations or /avatar like first"):
            await service.keep_variation(user.id, 1)
        await service.variations(user.id)
        with pytest.raises(AvatarError, match="^pick a number from 1 to 4$"):
            await service.keep_variation(user.id, 5)


def a_picture(fmt: str = "PNG") -> bytes:
    """Someone's picture: a light face-ish disc on a dark background."""
    picture = Image.new("RGB", (120, 90), (30, 40, 60))
    ImageDraw.Draw(picture).ellipse((30, 10, 90, 80), fill=(230, 190, 160))
    buffer = io.BytesIO()
    picture.save(buffer, fmt)
    return buffer.getvalue()


@dataclass
class Liking:
    """A started service with an encoder, its store and settings, and one user."""

    service: AvatarService
    store: Store
    user_id: int
    settings: Settings


@pytest.fixture
async def liking(face_settings: Settings, tiny_encoder_weights: Path) -> AsyncIterator[Liking]:
    s = face_settings.model_copy(update={"avatar_encoder_weights": tiny_encoder_weights})
    async with open_store(s.db_path) as store:
        user = await store.users.get_or_create("console", "ana", "Ana")
        service = AvatarService(s, store)
        await service.start()
        yield Liking(service, store, user.id, s)
        await service.close()


async def test_a_face_found_from_a_picture_is_offered_then_kept(liking: Liking) -> None:
    service, store, folder = liking.service, liking.store, liking.settings.avatar_dir
    found = await service.face_like(liking.user_id, a_picture("JPEG"))
    face = image(found.data)
    assert found.mime == "image/png" and face.format == "PNG" and face.size == (256, 256)
    # Only the found latent is kept, as the one candidate: nothing of the picture itself.
    written = [p.relative_to(folder) for p in folder.rglob("*") if p.is_file()]
    assert written == [Path(str(liking.user_id), "variations.npz")]
    assert await store.avatars.get(liking.user_id) is None
    with pytest.raises(AvatarError, match="^pick a number from 1 to 1$"):
        await service.keep_variation(liking.user_id, 2)
    kept = await service.keep_variation(liking.user_id, 1)
    assert kept.data == found.data and (await service.own_face(liking.user_id)).data == found.data
    assert not [p for p in folder.rglob("*") if p.is_file()]


async def test_a_found_face_restyles_varies_and_morphs_like_any_other(liking: Liking) -> None:
    service, store = liking.service, liking.store
    await service.face_like(liking.user_id, a_picture("PNG"))
    kept = await service.keep_variation(liking.user_id, 1)
    record = await store.avatars.get(liking.user_id)
    assert len(record.latent) == 4 * service.renderer.code_dim  # a face code, not a z
    other = next(style for style in service.styles() if style != record.style)
    restyled = await service.own_face(liking.user_id, style=other)
    assert restyled.data != kept.data and (await store.avatars.get(liking.user_id)).style == other
    sheet = image((await service.variations(liking.user_id)).data)
    assert sheet.size[0] > 2 * 256
    with np.load(liking.settings.avatar_dir / str(liking.user_id) / "variations.npz") as data:
        assert data["latents"].shape == (4, service.renderer.code_dim)
        assert len({row.tobytes() for row in data["latents"]}) == 4
    morph = image((await service.morph(liking.user_id, frames=3)).data)
    assert morph.format == "GIF" and morph.n_frames == 4  # forward then back


async def test_a_latent_of_another_model_is_replaced_by_a_new_face(face_settings: Settings) -> None:
    async with open_store(face_settings.db_path) as store:
        user = await store.users.get_or_create("console", "ana", "Ana")
        service = AvatarService(face_settings, store)
        await service.start()
        await store.avatars.put(user.id, "lorelei", b"\0" * 4 * 7, "old-model")
        face = await service.own_face(user.id)
        assert image(face.data).size == (256, 256)
        assert len((await store.avatars.get(user.id)).latent) == 4 * service.renderer.nz


async def test_a_face_kept_in_a_style_no_longer_offered_gets_an_offered_one(face_settings: Settings) -> None:
    async with open_store(face_settings.db_path) as store:
        user = await store.users.get_or_create("console", "ana", "Ana")
        service = AvatarService(face_settings, store)
        await service.start()
        latent = service.renderer.latent(5)
        await store.avatars.put(user.id, "thumbs", latent.tobytes(), "older-model")
        assert image((await service.own_face(user.id)).data).size == (256, 256)
        record = await store.avatars.get(user.id)
        assert record.style in service.styles() and record.latent == latent.tobytes()


async def test_a_picture_is_refused_with_the_reason_and_without_an_encoder(face_settings: Settings,
                                                                           tiny_encoder_weights: Path) -> None:
    async with open_store(face_settings.db_path) as store:
        user = await store.users.get_or_create("console", "ana", "Ana")
        service = AvatarService(face_settings, store)
        await service.start()
        assert service.finder is None
        with pytest.raises(AvatarError, match="^finding a face from a picture is not installed in this build$"):
            await service.face_like(user.id, a_picture())
        service = AvatarService(face_settings.model_copy(update={"avatar_encoder_weights": tiny_encoder_weights}),
                                store)
        await service.start()
        with pytest.raises(AvatarError, match=r"^that file is not a picture I can read \(PNG, JPEG, WebP or GIF\)$"):
            await service.face_like(user.id, b"<svg/>")
        assert not face_settings.avatar_dir.exists()


async def test_morph_is_a_looping_gif(face_settings: Settings) -> None:
    service = AvatarService(face_settings, None)
    await service.start()
    morph = await service.morph(style="lorelei", seed=3, frames=6)
    gif = Image.open(io.BytesIO(morph.data))
    assert morph.mime == "image/gif" and gif.format == "GIF" and gif.n_frames == 10 and gif.size == (192, 192)


async def test_export_and_delete_of_a_users_face(face_settings: Settings) -> None:
    async with open_store(face_settings.db_path) as store:
        user = await store.users.get_or_create("console", "ana", "Ana")
        service = AvatarService(face_settings, store)
        await service.start()
        assert await service.export_user_data(user.id) == {}
        await service.own_face(user.id)
        await service.variations(user.id)
        files = await service.export_user_data(user.id)
        assert image(files["avatar/face.png"]).format == "PNG" and b"style" in files["avatar/avatar.json"]
        assert await service.delete_user_data(user.id) == 1
        assert await store.avatars.get(user.id) is None
        assert not (face_settings.avatar_dir / str(user.id)).exists()


async def test_faces_are_drawn_on_one_thread_with_one_torch_thread(face_settings: Settings) -> None:
    """A thread that ran torch on two threads, kept alive in a pool, slows every later twin reply
    (see avatar.service); the faces keep all their torch work to one single-threaded thread."""
    service = AvatarService(face_settings, None)
    await service.start()
    seen: list[tuple[int, int]] = []
    generator = service.renderer.loaded.generator
    generator.body.register_forward_hook(lambda *_: seen.append((threading.get_ident(), torch.get_num_threads())))
    await service.random_face(seed=1)
    await service.morph(seed=2, frames=3)
    await asyncio.gather(*(service.random_face(seed=k) for k in range(3)))
    assert len(seen) == 5 and len({thread for thread, _ in seen}) == 1
    assert {threads for _, threads in seen} == {1}
    assert seen[0][0] != threading.get_ident()
    await service.close()
    with pytest.raises(AvatarError, match="not loaded"):
        await service.random_face(seed=1)
