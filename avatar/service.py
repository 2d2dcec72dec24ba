"""Faces for the bot: random faces, each twin's stable face, variations to pick from, morphs,
and a face found from a picture the user sends.

A twin's face is a generator latent plus a style, kept in the store until its owner asks for a
new one, so it is the same on every platform and after every restart. Rendering runs on a thread
of its own; the event loop only awaits it.

That thread computes with one torch thread: each thread that runs parallel torch work keeps an
OpenMP team of its own, and an idle team slows the inference worker's for the life of the process,
while a face is fast enough on one thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from PIL import Image, ImageDraw

from avatar.checkpoint import WeightsError, load_encoder, load_generator, load_upscaler
from avatar.likeness import FaceFinder
from avatar.picture import PictureError, read_picture
from avatar.render import FaceRenderer, UnknownStyle, gif_bytes, grid, png_bytes
from persona_store import Store
from twinbot.files import delete_tree
from twinbot.settings import Settings

BUNDLED_WEIGHTS = Path(__file__).resolve().parent / "weights" / "generator.pt"
BUNDLED_UPSCALER = BUNDLED_WEIGHTS.with_name("upscaler.pt")
BUNDLED_ENCODER = BUNDLED_WEIGHTS.with_name("encoder.pt")
ICON_SIZE = 64
T = TypeVar("T")


class AvatarError(Exception):
    """A face could not be made; the message is fit for the user."""


@dataclass(frozen=True, slots=True)
class RenderedImage:
    filename: str
    data: bytes
    mime: str


def weights_path(settings: Settings) -> Path:
    if settings.avatar_weights is not None:
        return settings.avatar_weights
    if settings.avatar_model == "photo-noncommercial":
        raise AvatarError("the photo face model is not installed in this build; use AVATAR_MODEL=bundled")
    return BUNDLED_WEIGHTS


def companion_path(configured: Path | None, bundled: Path, settings: Settings) -> Path | None:
    """The upscaler's or encoder's file: the configured one, else the shipped one, which belongs to
    the bundled generator only (with other generator weights and nothing configured: none)."""
    if configured is not None:
        return configured
    return bundled if settings.avatar_weights is None else None


def numbered(images: list[Image.Image]) -> list[Image.Image]:
    """Label each image 1..N in its corner so people can say which one they want."""
    for number, image in enumerate(images, start=1):
        draw = ImageDraw.Draw(image)
        draw.rectangle((6, 6, 30, 30), fill=(255, 255, 255))
        draw.text((13, 10), str(number), fill=(0, 0, 0))
    return images


class AvatarService:
    def __init__(self, settings: Settings, store: Store | None) -> None:
        self.settings = settings
        self.store = store
        self.renderer: FaceRenderer | None = None
        self.finder: FaceFinder | None = None
        self.model_id = ""
        self._thread: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        """Load the face models off the loop; a missing or corrupt file is an AvatarError naming it."""
        path = weights_path(self.settings)
        upscaler_path = companion_path(self.settings.avatar_upscaler_weights, BUNDLED_UPSCALER, self.settings)
        encoder_path = companion_path(self.settings.avatar_encoder_weights, BUNDLED_ENCODER, self.settings)
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="faces", initializer=torch.set_num_threads,
                                          initargs=(1,))
        try:
            loaded = await self._on_face_thread(lambda: load_generator(path))
            upscaler = await self._on_face_thread(lambda: load_upscaler(upscaler_path)) if upscaler_path else None
            encoder = await self._on_face_thread(lambda: load_encoder(encoder_path)) if encoder_path else None
            self.finder = FaceFinder(loaded, encoder) if encoder else None
        except (WeightsError, ValueError) as exc:
            await self.close()
            raise AvatarError(str(exc)) from None
        digest = await asyncio.to_thread(lambda: hashlib.sha256(path.read_bytes()).hexdigest()[:12])
        self.model_id = f"{path.stem}:{digest}"
        self.renderer = FaceRenderer(loaded, upscaler)

    async def close(self) -> None:
        self.renderer = None
        self.finder = None
        if self._thread is not None:
            await asyncio.to_thread(self._thread.shutdown)
            self._thread = None

    async def _on_face_thread(self, fn: Callable[[], T]) -> T:
        """`fn()` on the faces' own thread (one torch thread; one call at a time on the generator)."""
        if self._thread is None:
            raise AvatarError("the face generator is not loaded")
        return await asyncio.get_running_loop().run_in_executor(self._thread, fn)

    def styles(self) -> list[str]:
        return list(self._renderer().styles)

    def _renderer(self) -> FaceRenderer:
        if self.renderer is None:
            raise AvatarError("the face generator is not loaded")
        return self.renderer

    def _style(self, style: str | None, rng: np.random.Generator) -> str:
        renderer = self._renderer()
        if style is None:
            return str(rng.choice(renderer.styles))
        try:
            renderer.style_index(style)
        except UnknownStyle as exc:
            raise AvatarError(str(exc)) from None
        return style

    async def _faces(self, latents: list[np.ndarray], style: str, size: int = 256) -> list[Image.Image]:
        renderer = self._renderer()
        return await self._on_face_thread(lambda: renderer.faces(latents, style, size))

    async def random_face(self, style: str | None = None, seed: int | None = None) -> RenderedImage:
        seed = secrets.randbits(32) if seed is None else seed
        rng = np.random.default_rng(seed)
        chosen = self._style(style, rng)
        (face,) = await self._faces([self._renderer().latent(seed)], chosen)
        return RenderedImage(f"face-{chosen}-{seed}.png", await asyncio.to_thread(png_bytes, face), "image/png")

    async def _own(self, user_id: int, style: str | None = None, renew: bool = False) -> tuple[np.ndarray, str]:
        """The user's kept (latent, style), created (or replaced) and stored as needed."""
        store = self._require_store()
        record = await store.avatars.get(user_id)
        kept = self._renderer().from_bytes(record.latent) if record is not None and not renew else None
        if record is not None and kept is not None:
            latent = kept
            if record.style in self._renderer().styles and style in (None, record.style):
                return latent, record.style
            # Another style asked for, or the kept one is no longer offered (dropped from the model).
            chosen = self._style(style, np.random.default_rng())
        else:
            seed = secrets.randbits(32)
            latent = self._renderer().latent(seed)
            chosen = self._style(style, np.random.default_rng(seed))
        await store.avatars.put(user_id, chosen, latent.astype(np.float32).tobytes(), self.model_id)
        return latent, chosen

    def _require_store(self) -> Store:
        if self.store is None:
            raise AvatarError("faces of twins need the database")
        return self.store

    async def own_face(self, user_id: int, style: str | None = None, renew: bool = False) -> RenderedImage:
        latent, chosen = await self._own(user_id, style, renew)
        (face,) = await self._faces([latent], chosen)
        return RenderedImage(f"twin-{user_id}.png", await asyncio.to_thread(png_bytes, face), "image/png")

    async def own_face_png(self, user_id: int, size: int = ICON_SIZE) -> bytes:
        latent, chosen = await self._own(user_id)
        (face,) = await self._faces([latent], chosen, size)
        return await asyncio.to_thread(png_bytes, face)

    def _variations_file(self, user_id: int) -> Path:
        return self.settings.avatar_dir / str(user_id) / "variations.npz"

    async def variations(self, user_id: int, style: str | None = None) -> RenderedImage:
        latent, chosen = await self._own(user_id)
        chosen = self._style(style, np.random.default_rng()) if style else chosen
        renderer, rng = self._renderer(), np.random.default_rng()
        candidates = await self._on_face_thread(lambda: renderer.variations(latent, rng))
        await asyncio.to_thread(self._save_candidates, user_id, candidates, chosen)
        faces = numbered(await self._faces(candidates, chosen))
        sheet = await asyncio.to_thread(lambda: png_bytes(grid(faces, 2)))
        return RenderedImage(f"twin-{user_id}-variations.png", sheet, "image/png")

    def _save_candidates(self, user_id: int, latents: list[np.ndarray], style: str) -> None:
        """Keep the faces offered to the user (variations, or the one found in a picture) for keep_variation."""
        path = self._variations_file(user_id)
        path.parent.mkdir(parents=True, exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, latents=np.stack(latents), style=np.array(style))
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(buffer.getvalue())
        tmp.replace(path)

    async def face_like(self, user_id: int, picture: bytes) -> RenderedImage:
        """The face the generator draws most like `picture`, offered as the one candidate to keep
        (`/avatar keep pick:1`). Only its latent is kept: the picture is read in memory and dropped."""
        finder = self.finder
        if finder is None:
            raise AvatarError("finding a face from a picture is not installed in this build")
        self._require_store()
        limits = self.settings.avatar_picture_max_bytes, self.settings.avatar_picture_max_pixels
        try:
            likeness = await self._on_face_thread(lambda: finder.find(read_picture(picture, *limits)))
        except PictureError as exc:
            raise AvatarError(str(exc)) from None
        await asyncio.to_thread(self._save_candidates, user_id, [likeness.latent], likeness.style)
        (face,) = await self._faces([likeness.latent], likeness.style)
        return RenderedImage(f"twin-{user_id}-like.png", await asyncio.to_thread(png_bytes, face), "image/png")

    async def keep_variation(self, user_id: int, index: int) -> RenderedImage:
        """Make candidate `index` (1-based) of the last variations or found face the twin's face."""
        path = self._variations_file(user_id)
        if not path.is_file():
            raise AvatarError("there is nothing to pick from; ask for /avatar variations or /avatar like first")

        def read() -> tuple[np.ndarray, str]:
            with np.load(path) as data:
                return data["latents"], str(data["style"])

        latents, style = await asyncio.to_thread(read)
        if not 1 <= index <= len(latents):
            raise AvatarError(f"pick a number from 1 to {len(latents)}")
        latent = latents[index - 1]
        await self._require_store().avatars.put(user_id, style, latent.astype(np.float32).tobytes(), self.model_id)
        await asyncio.to_thread(path.unlink, True)
        return await self.own_face(user_id)

    async def morph(self, user_id: int | None = None, style: str | None = None, seed: int | None = None,
                    frames: int = 24) -> RenderedImage:
        seed = secrets.randbits(32) if seed is None else seed
        rng = np.random.default_rng(seed)
        if user_id is not None and self.store is not None and await self.store.avatars.get(user_id) is not None:
            start, kept_style = await self._own(user_id)
            chosen = self._style(style, rng) if style else kept_style
        else:
            start, chosen = self._renderer().latent(seed), self._style(style, rng)
        end = self._renderer().latent(seed + 1)
        renderer = self._renderer()
        path = await self._on_face_thread(lambda: renderer.path(start, end, frames))
        images = await self._faces(path, chosen, 192)
        return RenderedImage(f"morph-{chosen}-{seed}.gif", await asyncio.to_thread(gif_bytes, images), "image/gif")

    async def export_user_data(self, user_id: int) -> dict[str, bytes]:
        if self.store is None or (record := await self.store.avatars.get(user_id)) is None:
            return {}
        face = await self.own_face(user_id)
        about = {"style": record.style, "model": record.model_id, "created_at": record.created_at}
        return {"avatar/face.png": face.data, "avatar/avatar.json": json.dumps(about, indent=2).encode()}

    async def delete_user_data(self, user_id: int) -> int:
        folder = self.settings.avatar_dir / str(user_id)
        files = await delete_tree(folder)
        if self.store is not None:
            await self.store.avatars.delete(user_id)
        return files
