"""Files of the face models: the shipped generator (EMA), upscaler and encoder, all fp16.

Each is written to a temporary file and renamed, so a file is either complete or absent; each
loads with `weights_only=True` (plain tensors and values, no pickled code) and says, naming the
file, when it is missing, corrupt or of another kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

from avatar.encoder import EncoderConfig, FaceEncoder
from avatar.model import GanConfig, Generator
from avatar.upscale import Upscaler, UpscalerConfig
from twinbot.atomic import save_torch_atomically

FORMAT = "twinbot-face-gan/1"
UPSCALER_FORMAT = "twinbot-face-upscaler/2"  # 2: a bias per style
ENCODER_FORMAT = "twinbot-face-encoder/1"
M = TypeVar("M", bound=nn.Module)


class WeightsError(Exception):
    """A weights file is missing, corrupt or of another format; the message names the file."""


@dataclass(frozen=True)
class LoadedGenerator:
    generator: Generator
    styles: tuple[str, ...]
    model_id: str
    meta: dict


@dataclass(frozen=True)
class LoadedEncoder:
    encoder: FaceEncoder
    styles: tuple[str, ...]
    meta: dict


def _save(path: Path, fmt: str, module: nn.Module, config: dict, styles: tuple[str, ...], meta: dict) -> None:
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in module.state_dict().items()}
    save_torch_atomically({"format": fmt, "config": config, "styles": list(styles), "meta": meta,
                           "state_dict": state}, path)


def _load(path: Path, fmt: str, what: str, build: Callable[[dict], M]) -> tuple[M, dict]:
    """(the module in eval mode, fp32 and frozen, the file's whole dict), or WeightsError naming the file."""
    if not path.is_file():
        raise WeightsError(f"{what} weights not found: {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise WeightsError(f"{what} weights are corrupt or unreadable: {path} ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise WeightsError(f"not a twinbot {what} file: {path}")
    try:
        module = build(data["config"])
        module.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in data["state_dict"].items()})
    except Exception as exc:
        raise WeightsError(f"{what} weights do not fit the model: {path} ({exc})") from None
    # Channels-last: in bf16, oneDNN otherwise reorders every convolution's input and output, which
    # was most of the upscaler's time and a third of the generator's (docs/benchmarks.md).
    module.to(memory_format=torch.channels_last)
    return module.eval().requires_grad_(False), data  # loaded weights are only read, never trained


def save_generator(path: Path, generator: Generator, styles: tuple[str, ...], meta: dict) -> None:
    """The shipped form: fp16 weights of the (EMA) generator, its config, style names and metadata."""
    _save(path, FORMAT, generator, generator.cfg.to_dict(), styles, meta)


def load_generator(path: Path, model_id: str | None = None) -> LoadedGenerator:
    """A ready-to-sample generator (eval mode, fp32), or WeightsError saying what is wrong."""
    generator, data = _load(path, FORMAT, "face generator", lambda c: Generator(GanConfig(**c)))
    styles = tuple(data["styles"])
    if len(styles) != generator.cfg.n_styles:
        raise WeightsError(f"face generator file lists {len(styles)} styles for {generator.cfg.n_styles}: {path}")
    return LoadedGenerator(generator, styles, model_id or f"{path.stem}", data.get("meta", {}))


def save_upscaler(path: Path, upscaler: Upscaler, meta: dict) -> None:
    _save(path, UPSCALER_FORMAT, upscaler, upscaler.cfg.to_dict(), (), meta)


def load_upscaler(path: Path) -> Upscaler:
    upscaler, _ = _load(path, UPSCALER_FORMAT, "face upscaler", lambda c: Upscaler(UpscalerConfig(**c)))
    return upscaler


def save_encoder(path: Path, encoder: FaceEncoder, styles: tuple[str, ...], meta: dict) -> None:
    _save(path, ENCODER_FORMAT, encoder, encoder.cfg.to_dict(), styles, meta)


def load_encoder(path: Path) -> LoadedEncoder:
    encoder, data = _load(path, ENCODER_FORMAT, "face encoder", lambda c: FaceEncoder(EncoderConfig(**c)))
    return LoadedEncoder(encoder, tuple(data["styles"]), data.get("meta", {}))
