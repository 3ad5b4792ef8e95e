"""Inspecting a model on disk without loading it: a GGUF (split or not), an mmproj, a GGUF LoRA, an HF model
folder or a PEFT adapter folder, read from headers and JSON files only, cached by path, size and mtime."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path
from typing import Any

import yaml

from ..errors import InspectionError
from .gguf import FILE_TYPES, MARKER_TOKENS, GGUFError, read_header
from .info import ModelInfo

SPLIT_RE = re.compile(r"^(?P<stem>.*)-(?P<no>\d{5})-of-(?P<total>\d{5})\.gguf$", re.IGNORECASE)
# HF dtypes by bytes per parameter, for a safetensors header that names them.
_SAFETENSORS_HEADER_LIMIT = 100 * 2**20
_JSON_LIMIT = 20 * 2**20


class Inspector:
    """Inspects paths and remembers the answers while the files stay the same (path, size, mtime)."""

    def __init__(self) -> None:
        self._cache: dict[Path, tuple[tuple[int, int], ModelInfo]] = {}

    def inspect(self, path: Path) -> ModelInfo:
        path = Path(path).expanduser()
        try:
            resolved = path.resolve()
            stamp = _stamp(resolved)
        except OSError as exc:
            raise InspectionError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
        cached = self._cache.get(resolved)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        info = inspect_path(resolved)
        self._cache[resolved] = (stamp, info)
        return info


def _stamp(path: Path) -> tuple[int, int]:
    """Size and newest mtime: of the file, or of a folder's top-level files (a rewritten config counts)."""
    if path.is_dir():
        entries = [p.stat() for p in path.iterdir() if p.is_file()]
        return sum(s.st_size for s in entries), max((s.st_mtime_ns for s in entries), default=0)
    stat = path.stat()
    return stat.st_size, stat.st_mtime_ns


def inspect_path(path: Path) -> ModelInfo:
    """What ``path`` holds; InspectionError (naming the path and the problem) for anything that is not a model."""
    if not path.exists():
        raise InspectionError(f"{path}: no such file or folder")
    if path.is_dir():
        if (path / "adapter_config.json").is_file():
            return _inspect_peft(path)
        if (path / "config.json").is_file():
            return _inspect_hf(path)
        ggufs = sorted(path.glob("*.gguf"))
        if len(ggufs) == 1:
            return inspect_path(ggufs[0])
        raise InspectionError(f"{path}: not a model folder (no config.json or adapter_config.json"
                              f"{'; it holds several .gguf files: pick one' if ggufs else ''})")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise InspectionError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if not magic:
        raise InspectionError(f"{path}: the file is empty (an interrupted download or copy?)")
    if magic == b"GGUF":
        return _inspect_gguf(path)
    if path.suffix == ".safetensors":
        return _inspect_hf(path.parent)
    raise InspectionError(f"{path}: not a GGUF file, model folder or adapter folder")


# --- GGUF -------------------------------------------------------------------------------------------------

def split_parts(path: Path) -> list[Path]:
    """All parts of a split GGUF (``name-00001-of-00003.gguf``), in order; [path] when it is not split.
    A missing part is an InspectionError naming it: the model cannot load without it."""
    match = SPLIT_RE.match(path.name)
    if not match:
        return [path]
    total = int(match["total"])
    parts = [path.with_name(f"{match['stem']}-{n:05d}-of-{total:05d}.gguf") for n in range(1, total + 1)]
    missing = [p.name for p in parts if not p.is_file()]
    if missing:
        raise InspectionError(f"{path}: part of a split model whose other parts are missing: {', '.join(missing)}")
    return parts


def _inspect_gguf(path: Path) -> ModelInfo:
    parts = split_parts(path)
    try:
        headers = [read_header(p) for p in parts]
    except GGUFError as exc:
        message = str(exc)
        raise InspectionError(message if str(path) in message else f"{path}: {message}") from exc
    except OSError as exc:
        raise InspectionError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    meta = headers[0].metadata
    arch = _str(meta.get("general.architecture"))
    kind = _gguf_kind(meta)
    types = sum((h.tensor_types for h in headers[1:]), headers[0].tensor_types.copy())

    def arch_int(key: str) -> int | None:
        value = meta.get(f"{arch}.{key}")
        if isinstance(value, list):  # per-layer values (some architectures): the largest
            value = max((v for v in value if isinstance(v, int)), default=None)
        return value if isinstance(value, int) and value > 0 else None

    heads, embedding = arch_int("attention.head_count"), arch_int("embedding_length")
    head_size = arch_int("attention.key_length") or (embedding // heads if embedding and heads else None)
    tokens = meta.get("tokenizer.ggml.tokens")
    tags = meta.get("general.tags")
    return ModelInfo(
        path=str(path),
        kind=kind,
        size_bytes=sum(p.stat().st_size for p in parts),
        name=_str(meta.get("general.name")) or path.stem,
        architecture=arch,
        parameters=sum(h.parameters for h in headers) or None,
        quantization=_quantization(meta.get("general.file_type"), types),
        context_length=arch_int("context_length"),
        layers=arch_int("block_count"),
        heads=heads,
        kv_heads=arch_int("attention.head_count_kv") or heads,
        head_size=head_size,
        embedding_length=embedding,
        feed_forward_length=arch_int("feed_forward_length"),
        vocab_size=arch_int("vocab_size") or (tokens if isinstance(tokens, int) else None),
        chat_template=_str(meta.get("tokenizer.chat_template")),
        license=_str(meta.get("general.license")),
        base_model=_str(meta.get("general.base_model.0.repo_url") or meta.get("general.base_model.0.name")
                        or meta.get("adapter.base_model")),
        tags=tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
        files=tuple(str(p) for p in parts),
        vision=True if kind == "mmproj" and meta.get("clip.has_vision_encoder") is not False else None,
        audio=True if meta.get("clip.has_audio_encoder") is True else None,
        embedding=_gguf_embedding(meta, arch),
        special_tokens=tuple(sorted(headers[0].markers)),
        metadata={k: v for k, v in meta.items() if not k.startswith("tokenizer.ggml.")},
    )


def _gguf_kind(meta: dict[str, Any]) -> Any:
    general_type = meta.get("general.type")
    if general_type == "mmproj" or meta.get("general.architecture") == "clip":
        return "mmproj"
    if general_type == "adapter" or "adapter.type" in meta:
        return "gguf_lora"
    return "gguf"


def _gguf_embedding(meta: dict[str, Any], arch: str | None) -> bool | None:
    pooling = meta.get(f"{arch}.pooling_type")
    if isinstance(pooling, int):
        return pooling > 0  # 0: none; mean, cls, last, rank pool hidden states into one vector
    if arch in ("bert", "nomic-bert", "jina-bert-v2", "t5encoder"):
        return True
    return None


def _quantization(file_type: Any, types: Any) -> str | None:
    if isinstance(file_type, int) and file_type in FILE_TYPES:
        return FILE_TYPES[file_type]
    if types:  # the type holding most parameters
        return max(types.items(), key=lambda kv: kv[1])[0]
    return None


# --- Hugging Face folders ---------------------------------------------------------------------------------

def _inspect_hf(folder: Path) -> ModelInfo:
    config = _json(folder / "config.json")
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    tokenizer = _json(folder / "tokenizer_config.json", required=False)
    readme = _front_matter(folder / "README.md")
    template = _hf_template(folder, tokenizer)
    architectures = config.get("architectures")
    arch = architectures[0] if isinstance(architectures, list) and architectures else config.get("model_type")
    heads = _pos_int(text.get("num_attention_heads"))
    hidden = _pos_int(text.get("hidden_size"))
    weights = _weight_files(folder)
    parameters, dtype = _safetensors_parameters(folder, weights)
    quant = config.get("quantization_config")
    if isinstance(quant, dict):  # pre-quantized weights (gptq, awq, bitsandbytes, fp8, ...)
        quantization = _str(quant.get("quant_method")) or "quantized"
    else:
        quantization = dtype or _str(config.get("torch_dtype") or config.get("dtype"))
    vision = bool(config.get("vision_config")) or any("Vision" in str(a) or "VL" in str(a)
                                                      for a in (architectures or []))
    audio = bool(config.get("audio_config"))
    added = _added_tokens(tokenizer)
    return ModelInfo(
        path=str(folder),
        kind="hf",
        size_bytes=sum(p.stat().st_size for p in weights),
        name=folder.name,
        architecture=_str(arch),
        parameters=parameters,
        quantization=quantization,
        context_length=_pos_int(text.get("max_position_embeddings")),
        layers=_pos_int(text.get("num_hidden_layers")),
        heads=heads,
        kv_heads=_pos_int(text.get("num_key_value_heads")) or heads,
        head_size=_pos_int(text.get("head_dim")) or (hidden // heads if hidden and heads else None),
        embedding_length=hidden,
        feed_forward_length=_pos_int(text.get("intermediate_size")),
        vocab_size=_pos_int(text.get("vocab_size")),
        chat_template=template,
        license=_str(readme.get("license")),
        base_model=_first_str(readme.get("base_model")),
        tags=tuple(t for t in readme.get("tags", []) if isinstance(t, str)) if isinstance(readme.get("tags"), list) else (),
        files=tuple(str(p) for p in weights),
        vision=vision or None,
        audio=audio or None,
        embedding=_hf_embedding(folder, architectures),
        response_template=_str(tokenizer.get("response_template")) if isinstance(tokenizer.get("response_template"), str)
        else (json.dumps(tokenizer["response_template"]) if tokenizer.get("response_template") else None),
        special_tokens=tuple(sorted(m for m in MARKER_TOKENS if m in added)),
        metadata={"config": {k: v for k, v in config.items() if not isinstance(v, (dict, list))}},
    )


def _inspect_peft(folder: Path) -> ModelInfo:
    config = _json(folder / "adapter_config.json")
    weights = [p for p in folder.iterdir() if p.suffix in (".safetensors", ".bin") and p.is_file()]
    parameters, _ = _safetensors_parameters(folder, weights)
    return ModelInfo(
        path=str(folder),
        kind="peft_adapter",
        size_bytes=sum(p.stat().st_size for p in weights),
        name=folder.name,
        architecture=_str(config.get("peft_type")),
        parameters=parameters,
        base_model=_str(config.get("base_model_name_or_path")),
        license=_str(_front_matter(folder / "README.md").get("license")),
        files=tuple(str(p) for p in weights),
        metadata={"rank": config.get("r"), "alpha": config.get("lora_alpha"),
                  "target_modules": config.get("target_modules"), "task_type": config.get("task_type")},
    )


def _hf_template(folder: Path, tokenizer: dict[str, Any]) -> str | None:
    jinja = folder / "chat_template.jinja"  # newer transformers save it beside the tokenizer
    if jinja.is_file():
        return jinja.read_text(encoding="utf-8", errors="replace")
    separate = folder / "chat_template.json"
    template = _json(separate, required=False).get("chat_template") if separate.is_file() else None
    template = template or tokenizer.get("chat_template")
    if isinstance(template, list):  # named templates: the default one
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default") or next(iter(named.values()), None)
    return template if isinstance(template, str) else None


def _added_tokens(tokenizer: dict[str, Any]) -> str:
    decoder = tokenizer.get("added_tokens_decoder")
    if not isinstance(decoder, dict):
        return ""
    return " ".join(str(t.get("content", "")) for t in decoder.values() if isinstance(t, dict))


def _hf_embedding(folder: Path, architectures: Any) -> bool | None:
    if (folder / "modules.json").is_file() or (folder / "config_sentence_transformers.json").is_file():
        return True
    names = [str(a) for a in architectures] if isinstance(architectures, list) else []
    if any(a.endswith(("ForCausalLM", "ForConditionalGeneration")) for a in names):
        return False
    if any(a in ("BertModel", "XLMRobertaModel", "NomicBertModel", "MPNetModel") for a in names):
        return True
    return None


def _weight_files(folder: Path) -> list[Path]:
    for pattern in ("*.safetensors", "*.bin", "*.pt"):
        files = sorted(p for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("training_args"))
        if files:
            return files
    return []


def _safetensors_parameters(folder: Path, weights: list[Path]) -> tuple[int | None, str | None]:
    """Parameters from the safetensors headers (8-byte length, then JSON of dtypes and shapes); the dtype
    holding most of them. None where the weights are not safetensors or a header is damaged."""
    total, by_dtype = 0, {}
    files = [p for p in weights if p.suffix == ".safetensors"]
    if not files:
        return None, None
    for file in files:
        try:
            with open(file, "rb") as f:
                raw = f.read(8)
                if len(raw) != 8:
                    return None, None
                length = struct.unpack("<Q", raw)[0]
                if length > _SAFETENSORS_HEADER_LIMIT:
                    return None, None
                header = json.loads(f.read(length))
        except (OSError, ValueError):
            return None, None
        for name, tensor in header.items():
            if name == "__metadata__" or not isinstance(tensor, dict):
                continue
            count = 1
            for dim in tensor.get("shape", []):
                count *= int(dim)
            total += count
            dtype = str(tensor.get("dtype", "?"))
            by_dtype[dtype] = by_dtype.get(dtype, 0) + count
    dtype = max(by_dtype.items(), key=lambda kv: kv[1])[0] if by_dtype else None
    return total or None, {"BF16": "BF16", "F16": "F16", "F32": "F32"}.get(dtype or "", dtype)


# --- small readers ----------------------------------------------------------------------------------------

def _json(path: Path, required: bool = True) -> dict[str, Any]:
    try:
        if path.stat().st_size > _JSON_LIMIT:
            raise InspectionError(f"{path}: too large for a model's JSON file ({path.stat().st_size} bytes)")
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        if required:
            raise InspectionError(f"{path}: missing") from None
        return {}
    except (OSError, ValueError) as exc:
        if required:
            raise InspectionError(f"{path}: not readable JSON ({exc})") from exc
        return {}
    if not isinstance(data, dict):
        if required:
            raise InspectionError(f"{path}: expected a JSON object, got {type(data).__name__}")
        return {}
    return data


def _front_matter(path: Path) -> dict[str, Any]:
    """A model card's YAML front matter (license, base_model, tags); {} when absent or unreadable."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return {}
    if not text.startswith("---"):
        return {}
    end = text.find("\n---", 3)
    if end < 0:
        return {}
    try:
        data = yaml.safe_load(text[3:end])
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first_str(value: Any) -> str | None:
    if isinstance(value, list):
        value = next((v for v in value if isinstance(v, str)), None)
    return _str(value)


def _pos_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
