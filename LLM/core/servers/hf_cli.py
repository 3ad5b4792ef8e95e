"""The transformers server's command line, checked into a ServeConfig; a bad value exits 2 with one line naming it."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from typing import Any, NoReturn

from .hf_generation import LoadError, LoadOptions, parse_max_memory

DTYPES = ("auto", "float32", "bfloat16", "float16")
ATTN_IMPLEMENTATIONS = ("eager", "sdpa", "flex_attention", "flash_attention_2", "flash_attention_3")
# The module each flash attention needs, and the pip name to say: transformers fails deep in loading without it.
_ATTN_MODULES = {"flash_attention_2": ("flash_attn", "flash-attn"), "flash_attention_3": ("flash_attn_interface", "flash-attn-3")}
_DEVICE_STRATEGIES = ("auto", "balanced", "balanced_low_0", "sequential")
_DEVICE = re.compile(r"(cpu|mps|disk|meta|(cuda|xpu|npu|hpu|mlu)(:\d+)?|\d+)")
_NAMED_ADAPTER = re.compile(r"([^=\s][^=]*)=(.+)")


@dataclass(frozen=True)
class ServeConfig:
    """Everything main() needs: where to listen, which names to serve, what to load."""

    host: str
    port: int
    api_key_file: str | None
    base_names: tuple[str, ...]  # names that get the bare base model; may be empty (the one-adapter form)
    primary: str  # the first served name: /health reports it, requests without a model get it
    load: LoadOptions


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, no usage block: the server manager shows the last line of our output.
        print(f"error: {message}", file=sys.stderr, flush=True)
        sys.exit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m LLM.core.servers.hf_server",
                     description="An OpenAI-compatible server for a transformers model and its PEFT LoRA adapters.")
    parser.add_argument("--model", required=True, help="model directory (or a hub id already in the local cache)")
    parser.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR",
                        help="a PEFT LoRA adapter served as model NAME (repeatable); a bare DIR applies it "
                             "to the first --served-model-name")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--served-model-name", action="append", default=[], metavar="NAME",
                        help="a name for the bare base model (repeatable; the first is the primary; "
                             "default: the model dir's name)")
    parser.add_argument("--4bit", dest="load_in_4bit", action="store_true", help="bitsandbytes 4-bit (nf4)")
    parser.add_argument("--device-map", help='passed to from_pretrained: auto, cpu, cuda:0... or a JSON mapping')
    parser.add_argument("--max-memory", help='JSON, e.g. \'{"0": "10GiB", "cpu": "30GiB"}\'')
    parser.add_argument("--torch-dtype", "--dtype", dest="torch_dtype", default="auto", choices=DTYPES)
    parser.add_argument("--attn-implementation", help=f"one of {', '.join(ATTN_IMPLEMENTATIONS)}")
    parser.add_argument("--context-size", type=int, help="prompt + answer tokens (default: the model's maximum)")
    parser.add_argument("--api-key-file", help="file whose first line is the key requests must bear")
    return parser


def parse_device_map(text: str) -> str | int | dict[str, Any]:
    """'auto' -> 'auto', '0' -> 0, '{"model.layers.0": 0, "lm_head": "cpu"}' -> that mapping; ValueError otherwise."""
    text = text.strip()
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"is not valid JSON: {exc}") from exc
        if not isinstance(raw, dict) or not raw:
            raise ValueError("a JSON mapping must be a non-empty object of module name -> device")
        mapping: dict[str, Any] = {}
        for module, device in raw.items():
            if isinstance(device, bool) or not (isinstance(device, int) and device >= 0
                                                or isinstance(device, str) and _DEVICE.fullmatch(device)):
                raise ValueError(f"module {module!r}: {device!r} is not a device (cpu, disk, cuda:1, mps, 0...)")
            mapping[module] = int(device) if isinstance(device, str) and device.isdigit() else device
        return mapping
    if text in _DEVICE_STRATEGIES or _DEVICE.fullmatch(text):
        return int(text) if text.isdigit() else text
    raise ValueError(f"must be one of {', '.join(_DEVICE_STRATEGIES)}, a device (cpu, cuda:0, mps, 0...) "
                     f"or a JSON object of module name -> device; got {text!r}")


def check_attn_implementation(name: str) -> str:
    """The name if transformers knows it and its package is installed; ValueError saying which otherwise."""
    kernel = name.removeprefix("paged|")
    if "/" in kernel:  # a kernel from the hub (kernels-community/...): transformers resolves it
        return name
    if kernel not in ATTN_IMPLEMENTATIONS:
        raise ValueError(f"must be one of {', '.join(ATTN_IMPLEMENTATIONS)} (or a kernels hub repo id); got {name!r}")
    if kernel in _ATTN_MODULES:
        module, package = _ATTN_MODULES[kernel]
        if importlib.util.find_spec(module) is None:
            raise ValueError(f"{kernel} needs the {package} package, which is not installed "
                             f"(pip install {package}, or use sdpa)")
    return name


def _split_adapters(values: list[str]) -> tuple[list[tuple[str, str]], str | None]:
    """--adapter values -> ([(name, dir)], the one bare dir or None)."""
    named: list[tuple[str, str]] = []
    bare: list[str] = []
    for value in values:
        match = _NAMED_ADAPTER.fullmatch(value)
        if match and not os.path.isdir(value):  # a directory whose name holds '=' stays a directory
            named.append((match.group(1), match.group(2)))
        else:
            bare.append(value)
    if len(bare) > 1:
        raise ValueError(f"only one adapter may be given without a name (NAME=DIR); got {len(bare)}: {', '.join(bare)}")
    return named, bare[0] if bare else None


def parse_args(argv: list[str] | None = None) -> ServeConfig:
    parser = build_parser()
    args = parser.parse_args(argv)

    def fail(option: str, message: str) -> NoReturn:
        parser.error(f"argument {option}: {message}")

    if not 0 <= args.port <= 65535:
        fail("--port", f"must be 0-65535; got {args.port}")
    if args.context_size is not None and args.context_size < 1:
        fail("--context-size", f"must be a positive number of tokens; got {args.context_size}")
    try:
        named, bare = _split_adapters(args.adapter)
    except ValueError as exc:
        fail("--adapter", str(exc))
    names = list(args.served_model_name) or [os.path.basename(os.path.normpath(args.model))]
    # The one-adapter form: the first served name gets the adapter, the rest the bare base.
    adapters = ([(names[0], bare)] if bare else []) + named
    base_names = names[1:] if bare else names
    seen: set[str] = set()
    for option, name in [*(("--served-model-name", n) for n in base_names), *(("--adapter", n) for n, _ in adapters)]:
        if not name.strip():
            fail(option, "a served name must not be empty")
        if name in seen:
            fail(option, f"the name {name!r} is given twice")
        seen.add(name)
    for name, path in adapters:
        if not os.path.isdir(os.path.expanduser(path)):
            fail("--adapter", f"adapter directory not found: {path} (adapter {name!r})")
    device_map = max_memory = None
    if args.device_map is not None:
        try:
            device_map = parse_device_map(args.device_map)
        except ValueError as exc:
            fail("--device-map", str(exc))
    if args.max_memory is not None:
        try:
            max_memory = parse_max_memory(args.max_memory)
        except LoadError as exc:
            fail("--max-memory", str(exc).removeprefix("--max-memory "))
    attn = None
    if args.attn_implementation is not None:
        try:
            attn = check_attn_implementation(args.attn_implementation)
        except ValueError as exc:
            fail("--attn-implementation", str(exc))
    tokenizer_dir = None
    if bare and os.path.exists(os.path.join(os.path.expanduser(bare), "tokenizer_config.json")):
        tokenizer_dir = os.path.expanduser(bare)  # an adapter trained with added tokens ships its tokenizer
    load = LoadOptions(
        model=args.model,
        adapters=tuple(adapters),
        tokenizer_dir=tokenizer_dir,
        load_in_4bit=args.load_in_4bit,
        device_map=device_map,
        dtype=args.torch_dtype,
        max_memory=max_memory,
        attn_implementation=attn,
        context_size=args.context_size,
    )
    return ServeConfig(args.host, args.port, args.api_key_file, tuple(base_names), names[0], load)
