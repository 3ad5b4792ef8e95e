"""A tiny random vision-language model shaped like SmolVLM, built from configs, converted by llama.cpp's converter.

Nothing is downloaded. The text side is a 2-layer Llama with the *real* SmolLM2 tokenizer, rebuilt by transformers
from the default model's GGUF, so the pinned converter recognises its BPE pre-tokenizer (``smollm``); SmolVLM's image
tokens are added to it because llama-server's mtmd looks them up by text (``<fake_token_around_image>``,
``<global-img>``, ``<row_1_col_1>``, ...). The vision side is a 1-layer SigLIP tower on 32x32 images with an Idefics3
pixel-shuffle projector: an image costs a handful of tokens. ``convert_hf_to_gguf.py`` of the pinned llama.cpp source
(extracted from the engine's cached sdist) writes the text GGUF, and again with ``--mmproj`` the projector GGUF
(projector type ``idefics3``). All of it takes seconds on two cores, and all of it lives in the directory given.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from LLM.core.config import SHIPPED_CONFIG, load_backends
from LLM.core.errors import ResourceNotAvailableError
from LLM.core.servers.llama_build import SOURCE_VERSION, default_build, extract_source
from LLM.core.servers.model_files import resolve_model_path

CONVERTER = "convert_hf_to_gguf.py"
CONVERTER_PATHS = (CONVERTER, "conversion/", "gguf-py/")
NEEDS = ("torch", "transformers", "gguf", "safetensors")

# SmolVLM's image tokens: Idefics3Processor's three, the global-image tag and the 6x6 grid of tile tags.
IMAGE_TOKENS = ("<fake_token_around_image>", "<image>", "<end_of_utterance>", "<global-img>",
                *(f"<row_{row}_col_{col}>" for row in range(1, 7) for col in range(1, 7)))
IMAGE_SIZE, PATCH_SIZE, SCALE_FACTOR = 32, 8, 2
TOKENS_PER_TILE = (IMAGE_SIZE // PATCH_SIZE) ** 2 // SCALE_FACTOR**2  # 16 patches, pixel-shuffled 2x2: 4 embeddings
TEXT_HIDDEN = 64  # mtmd refuses a projector whose output width differs from the text model's embedding width


class ConverterUnavailable(RuntimeError):
    """The pinned converter or what it runs on is not on this machine (nothing to test, not a failure)."""


def build_tiny_vision_gguf(work_dir: Path) -> tuple[Path, Path]:
    """Build the model under ``work_dir`` and return (text model GGUF, mmproj GGUF).

    Raises ConverterUnavailable when the pinned llama.cpp source, a Python package the converter needs or the default
    model (whose tokenizer is reused) is absent, and RuntimeError with the converter's output when a conversion fails.
    """
    missing = [name for name in NEEDS if importlib.util.find_spec(name) is None]
    if missing:
        raise ConverterUnavailable(f"the converter needs {', '.join(missing)}: pip install -e '.[transformers,dev]'")
    work_dir.mkdir(parents=True, exist_ok=True)
    converter = _extract_converter(work_dir / "llama.cpp")
    hf_dir = _write_hf_model(work_dir / "tiny-vision-hf")
    model = work_dir / "tiny-vision-f16.gguf"
    mmproj = work_dir / "mmproj-tiny-vision-f16.gguf"
    _convert(converter, hf_dir, model, work_dir)
    _convert(converter, hf_dir, mmproj, work_dir, "--mmproj")
    return model, mmproj


def _extract_converter(target: Path) -> Path:
    """The converter of the pinned llama.cpp, from the sdist the engine build cached (never downloaded here)."""
    archive = default_build("").cache_dir / "src" / f"llama_cpp_python-{SOURCE_VERSION}.tar.gz"
    if not archive.is_file():
        raise ConverterUnavailable(f"the pinned llama.cpp source is not cached ({archive}): `llmctl engine build` "
                                   "downloads it")
    script = extract_source(archive, target, CONVERTER_PATHS) / CONVERTER
    if not script.is_file():
        raise ConverterUnavailable(f"{archive.name} has no {CONVERTER}")
    return script


def _write_hf_model(folder: Path) -> Path:
    """The transformers folder: random weights (seeded), SmolLM2's tokenizer plus SmolVLM's tokens, a processor."""
    import torch
    from transformers import (
        AutoTokenizer,
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
    )

    shipped = load_backends(SHIPPED_CONFIG, strict=True).models["default"]
    try:
        default_model = resolve_model_path(str(shipped.base_model))
    except ResourceNotAvailableError as exc:
        raise ConverterUnavailable(f"the default model (the tokenizer it lends) is absent: {exc}") from exc
    tokenizer = AutoTokenizer.from_pretrained(str(default_model.parent), gguf_file=default_model.name)
    tokenizer.add_special_tokens({"additional_special_tokens": list(IMAGE_TOKENS)})
    image_processor = Idefics3ImageProcessor(size={"longest_edge": IMAGE_SIZE},
                                             max_image_size={"longest_edge": IMAGE_SIZE})
    processor = Idefics3Processor(image_processor, tokenizer, image_seq_len=TOKENS_PER_TILE)
    config = Idefics3Config(
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        scale_factor=SCALE_FACTOR,
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2,
                       "image_size": IMAGE_SIZE, "patch_size": PATCH_SIZE, "num_channels": 3},
        text_config={"model_type": "llama", "architectures": ["LlamaForCausalLM"], "vocab_size": len(tokenizer),
                     "hidden_size": TEXT_HIDDEN, "intermediate_size": 128, "num_hidden_layers": 2,
                     "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 2048,
                     "bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id,
                     "pad_token_id": tokenizer.pad_token_id},
    )
    torch.manual_seed(0)  # the same weights, hence the same answers, on every run
    Idefics3ForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def _convert(converter: Path, hf_dir: Path, out: Path, work_dir: Path, *flags: str) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("NO_LOCAL_GGUF", None)  # the gguf-py of the same pinned source
    if importlib.util.find_spec("sentencepiece") is None:
        # The converter's Llama vocab code imports sentencepiece before it looks for tokenizer.model; without that
        # file (ours is a BPE tokenizer.json) it goes on to the GPT-2 vocab path, so an importable stand-in gives the
        # same GGUF as the real package. Product code that converts Llama-family models needs the real one.
        shim = work_dir / "shims"
        (shim / "sentencepiece").mkdir(parents=True, exist_ok=True)
        (shim / "sentencepiece" / "__init__.py").write_text("class SentencePieceProcessor:\n    pass\n")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), env.get("PYTHONPATH")]))
    log = out.with_suffix(".log")
    with open(log, "w", encoding="utf-8") as sink:
        code = subprocess.run([sys.executable, str(converter), str(hf_dir), "--outtype", "f16", "--outfile", str(out),
                               *flags], stdout=sink, stderr=subprocess.STDOUT, env=env, timeout=600).returncode
    if code != 0 or not out.is_file():
        tail = "\n".join(log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:])
        raise RuntimeError(f"{CONVERTER} {' '.join(flags)} failed (exit {code}); log {log}:\n{tail}")
