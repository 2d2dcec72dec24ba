"""Uploaded pictures: the four formats read, everything else refused with a message fit for the user."""

from __future__ import annotations

import io
import struct
import time
import zlib

import pytest
from PIL import Image

from avatar.picture import PictureError, read_picture

MAX_BYTES = 8 * 1024 * 1024
MAX_PIXELS = 25_000_000


def encoded(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def photo(size: tuple[int, int] = (48, 40)) -> Image.Image:
    """A picture with some detail (a gradient), so lossy formats have something to encode."""
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    image.paste((200, 30, 30), (0, 0, size[0] // 2, size[1] // 2))
    return image


def bilevel_png(width: int, height: int, pixels: bytes | None = None) -> bytes:
    """A real, valid 1-bit PNG of one colour: a few KB as a file, `width`×`height` pixels decoded
    (or, given `pixels`, that header with those bytes as its image data)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    if pixels is None:
        row = b"\x00" * (1 + (width + 7) // 8)  # filter byte "none", then the row's bits
        deflate = zlib.compressobj(9)
        pixels = b"".join(deflate.compress(row) for _ in range(height)) + deflate.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1 bit, greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def read(data: bytes, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS) -> Image.Image:
    return read_picture(data, max_bytes, max_pixels)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_png_jpeg_and_webp_are_read_in_full(fmt: str) -> None:
    picture = read(encoded(photo(), fmt))
    assert picture.format == fmt and picture.size == (48, 40)
    red, green, blue = picture.convert("RGB").getpixel((2, 2))
    assert red > 150 and green < 80 and blue < 80  # decoded pixels, not just a header


def test_a_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)
    picture = read(data)
    assert picture.format == "GIF" and picture.convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def test_the_crafted_png_is_a_real_picture() -> None:
    picture = read(bilevel_png(64, 48))
    assert picture.size == (64, 48) and picture.getpixel((10, 10)) == 0


@pytest.mark.parametrize("data", [
    b"hello, this is my face\n",
    b'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><circle cx="32" cy="32" r="30"/></svg>',
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n",
    half(encoded(photo(), "PNG")),  # a truncated PNG: its header reads, its pixels do not
    encoded(photo(), "BMP"),  # a picture, but not of a format we read
], ids=["text", "svg", "pdf", "truncated-png", "bmp"])
def test_what_is_not_a_readable_picture_is_refused(data: bytes) -> None:
    with pytest.raises(PictureError, match=r"^that file is not a picture I can read \(PNG, JPEG, WebP or GIF\)$"):
        read(data)


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(PictureError, match="^that file is empty$"):
        read(b"")


def test_a_file_over_the_byte_limit_is_refused_with_its_size_and_the_limit() -> None:
    with pytest.raises(PictureError, match=r"^that picture is 3\.0 MB; the limit is 2\.0 MB$"):
        read(b"\x00" * 3_000_000, max_bytes=2_000_000)


@pytest.mark.parametrize(("width", "height"), [(20_000, 20_000), (6_000, 5_000)])
def test_too_many_pixels_are_refused_from_the_header_before_decoding(width: int, height: int) -> None:
    """20000×20000 trips PIL's own bomb guard, 6000×5000 only ours: both are refused unread, at once."""
    data = bilevel_png(width, height)
    assert len(data) < 200_000  # what a decompression bomb looks like: small file, huge picture
    started = time.perf_counter()
    with pytest.raises(PictureError, match="^that picture has too many pixels; the limit is 25 megapixels$"):
        read(data)
    assert time.perf_counter() - started < 0.5  # decoding 30-400 megapixels takes far longer


def test_the_pixel_count_is_checked_before_any_pixel_is_read() -> None:
    """Image data that is not even zlib: decoding it would fail as "not a picture"; the header alone refuses it."""
    with pytest.raises(PictureError, match="too many pixels"):
        read(bilevel_png(6_000, 5_000, pixels=b"not image data"))
    with pytest.raises(PictureError, match="not a picture"):
        read(bilevel_png(600, 500, pixels=b"not image data"))


def test_a_tiny_picture_is_refused() -> None:
    with pytest.raises(PictureError, match="^that picture is only 15×40 px; send one at least 16 px on each side$"):
        read(encoded(photo((15, 40)), "PNG"))
    assert read(encoded(photo((16, 16)), "PNG")).size == (16, 16)
