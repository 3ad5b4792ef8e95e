"""Loading a transformers model (plus PEFT adapters) and streaming generations from it.

A vision-language model loads with its processor (hf_vision.py spots one): its chat prompts are rendered by
the processor's template and carry the request's images (pixel values) into ``generate``.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ..protocol.chatml import message_text, render_chatml
from ..protocol.stop_sequences import StopSequenceFilter
from .hf_adapters import AdapterError, Adapters
from .hf_vision import ImageError, decode_images, load_processor, model_class, processor_messages

# torch, transformers and peft are imported inside functions: importing this module (and the
# server beside it) must work on a machine without the [transformers] extra.


class LoadError(Exception):
    """The model or adapter cannot be loaded; the message says why, for the server log."""


class PromptError(Exception):
    """The request cannot be turned into a prompt (template failure, too long); answered 400."""


@dataclass(frozen=True)
class LoadOptions:
    """What to load, every value already checked and parsed (by the command line)."""

    model: str
    adapters: tuple[tuple[str, str], ...] = ()  # (name, directory), loaded in this order
    tokenizer_dir: str | None = None  # an adapter that ships its own tokenizer (the one-adapter form)
    load_in_4bit: bool = False
    device_map: str | int | dict[str, Any] | None = None
    dtype: str = "auto"
    max_memory: dict[int | str, int | str] | None = None
    attn_implementation: str | None = None
    context_size: int | None = None


@dataclass(frozen=True)
class SamplingParams:
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    top_k: int | None = None
    repetition_penalty: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Prompt:
    text: str
    input_ids: Any  # torch.LongTensor of shape (1, n), already on the model's device
    max_new_tokens: int
    # What else the processor made for generate() (pixel_values, image_sizes...), on the model's device too.
    extra_inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def n_tokens(self) -> int:
        return int(self.input_ids.shape[-1])


def _template_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Flatten list contents to text; chat templates expect strings."""
    return [{**m, "content": message_text(m)} for m in messages]


def _continues(messages: list[dict[str, Any]]) -> bool:
    """Whether the request continues an unfinished answer: the assistant's turn is last."""
    return bool(messages) and messages[-1].get("role") == "assistant"


_SIZE = re.compile(r"\d+(\.\d+)?\s*([KMGT]i?B|B)?", re.IGNORECASE)


def parse_max_memory(text: str | None) -> dict[int | str, int | str] | None:
    """'{"0": "10GiB", "cpu": "30GiB"}' -> {0: "10GiB", "cpu": "30GiB"} (accelerate wants int GPU ids)."""
    if not text:
        return None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoadError(f"--max-memory is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise LoadError('--max-memory must be a JSON object like {"0": "10GiB", "cpu": "30GiB"}')
    for device, size in raw.items():
        if isinstance(size, bool) or not isinstance(size, (int, str)) or not _SIZE.fullmatch(str(size)):
            raise LoadError(f"--max-memory {device!r}: {size!r} is not a size like \"10GiB\"")
    # A bare number stays a number: accelerate reads a string without a unit as an error.
    return {int(k) if str(k).isdigit() else str(k): v for k, v in raw.items()}


def _looks_like_path(name: str) -> bool:
    return os.path.isabs(name) or name.startswith(".") or name.startswith("~") or name.count("/") > 1


def load_engine(options: LoadOptions, log: Callable[[str], None]) -> HFEngine:
    """Load tokenizer, model and adapters; every failure becomes a LoadError with a clear message."""
    model_path = os.path.expanduser(options.model)
    if _looks_like_path(model_path) and not os.path.isdir(model_path):
        raise LoadError(f"model directory not found: {model_path}")
    for name, path in options.adapters:
        if not os.path.isdir(os.path.expanduser(path)):
            raise LoadError(f"adapter directory not found: {path} (adapter '{name}')")

    import torch
    import transformers

    kwargs: dict[str, Any] = {"dtype": options.dtype if options.dtype == "auto" else getattr(torch, options.dtype)}
    device_map = options.device_map
    if options.load_in_4bit:
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            raise LoadError("--4bit needs bitsandbytes, which is not installed (pip install bitsandbytes)")
        # Recent bitsandbytes also runs on the CPU, where bfloat16 matmuls are slow.
        compute = kwargs["dtype"] if options.dtype != "auto" else (
            torch.bfloat16 if torch.cuda.is_available() else torch.float32)
        kwargs["quantization_config"] = transformers.BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_compute_dtype=compute, bnb_4bit_quant_type="nf4"
        )
        device_map = device_map if device_map is not None else "auto"  # bitsandbytes places the weights itself
    if device_map is not None:
        kwargs["device_map"] = device_map
    if options.max_memory:
        kwargs["max_memory"] = options.max_memory
    if options.attn_implementation:
        kwargs["attn_implementation"] = options.attn_implementation

    tokenizer_dir = options.tokenizer_dir or model_path
    try:
        config = transformers.AutoConfig.from_pretrained(model_path)
        processor = load_processor(transformers, config, model_path, log)
        if processor is None or options.tokenizer_dir:
            log(f"loading tokenizer from {tokenizer_dir}")
            tokenizer = transformers.AutoTokenizer.from_pretrained(tokenizer_dir)
            if processor is not None:  # the adapter's tokenizer (with its added tokens) serves the processor too
                processor.tokenizer = tokenizer
        else:
            tokenizer = processor.tokenizer
        log(f"loading model from {model_path}")
        auto = transformers.AutoModelForCausalLM if processor is None else model_class(transformers, config)
        model = auto.from_pretrained(model_path, **kwargs)
    except Exception as exc:  # transformers raises OSError, ValueError, KeyError... for bad dirs
        raise LoadError(f"failed to load model from {model_path}: {type(exc).__name__}: {exc}") from exc
    if device_map is None and torch.cuda.is_available():
        model = model.to("cuda")
    if options.load_in_4bit:
        quantized = sum(type(module).__name__ == "Linear4bit" for module in model.modules())
        log(f"4-bit: {quantized} linear layers are bitsandbytes Linear4bit (nf4)")
    if len(tokenizer) > model.get_input_embeddings().weight.shape[0]:
        model.resize_token_embeddings(len(tokenizer))  # the adapter's tokenizer added tokens
    model.eval()

    # A VLM's config keeps the language model's limits in its text_config.
    text_config = getattr(model.config, "text_config", None)
    context = (options.context_size or getattr(model.config, "max_position_embeddings", None)
               or getattr(text_config, "max_position_embeddings", None) or 4096)
    engine = HFEngine(model, tokenizer, int(context), log, processor)
    for name, path in options.adapters:
        log(f"loading adapter '{name}' from {path}")
        try:
            engine.adapters.load(name, os.path.expanduser(path))
        except AdapterError as exc:
            raise LoadError(str(exc)) from exc
    return engine


class HFEngine:
    """A loaded model and its adapters; one generation runs at a time (the lock), others wait their turn."""

    def __init__(self, model: Any, tokenizer: Any, context_size: int, log: Callable[[str], None] = print,
                 processor: Any | None = None) -> None:
        self.log = log
        self.adapters = Adapters(model)  # owns the model and the lock every use of it takes
        self.tokenizer = tokenizer
        self.processor = processor  # a vision-language model's (tokenizer + image processor); None: text only
        self.context_size = context_size
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self._eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}

    @property
    def vision(self) -> bool:
        """Whether the model takes images."""
        return self.processor is not None

    @property
    def _templater(self) -> Any:
        """Who renders chat prompts: a VLM's processor when it has a template (image parts become the image
        placeholder there), else the tokenizer."""
        if self.processor is not None and getattr(self.processor, "chat_template", None):
            return self.processor
        return self.tokenizer

    def render(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
        """The prompt text. An assistant message last is an answer to continue (as llama-server's
        ``--prefill-assistant``): its turn is left open, with no new one started after it."""
        if not getattr(self._templater, "chat_template", None):
            if _continues(messages):
                return render_chatml(messages[:-1]) + message_text(messages[-1])
            return render_chatml(messages)
        if tools:
            try:
                return self._apply_template(messages, tools)
            except Exception as exc:  # a template may choke on tools: answer without them
                self.log(f"the chat template failed with tools ({exc}); rendering without them")
        try:
            return self._apply_template(messages, None)
        except Exception as exc:  # jinja raises for e.g. roles that do not alternate
            raise PromptError(f"the chat template failed: {exc}") from exc

    def _apply_template(self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> str:
        continues = _continues(messages)
        templater = self._templater
        converted = processor_messages(messages) if templater is self.processor else _template_messages(messages)
        return templater.apply_chat_template(
            converted, tools=tools, add_generation_prompt=not continues, continue_final_message=continues,
            tokenize=False
        )

    @property
    def model(self) -> Any:
        return self.adapters.model

    def prepare(
        self, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, max_tokens: int | None
    ) -> Prompt:
        if self.processor is None:
            text = self.render(messages, tools)
            # The template already holds the BOS token where the model wants one.
            return self._fit(text, max_tokens, add_special_tokens=False)
        try:
            images = decode_images(messages)
        except ImageError as exc:
            raise PromptError(str(exc)) from exc
        text = self.render(messages, tools)
        try:  # the processor repeats each image placeholder once per image token the vision tower yields
            inputs = self.processor(text=text, images=images or None, return_tensors="pt", add_special_tokens=False)
        except Exception as exc:  # e.g. more images than the template placed placeholders for
            raise PromptError(f"the processor failed: {type(exc).__name__}: {exc}") from exc
        extra = {key: _on_device(value, self.model) for key, value in inputs.items()
                 if key not in ("input_ids", "attention_mask")}
        return self._fit_ids(text, inputs["input_ids"], max_tokens, extra)

    def prepare_text(self, text: str, max_tokens: int | None) -> Prompt:
        """A raw text completion prompt: tokenized as is, with the BOS token the tokenizer adds."""
        return self._fit(text, max_tokens, add_special_tokens=True)

    def _fit(self, text: str, max_tokens: int | None, add_special_tokens: bool) -> Prompt:
        input_ids = self.tokenizer(text, return_tensors="pt", add_special_tokens=add_special_tokens)["input_ids"]
        return self._fit_ids(text, input_ids, max_tokens, {})

    def _fit_ids(self, text: str, input_ids: Any, max_tokens: int | None, extra: dict[str, Any]) -> Prompt:
        if int(input_ids.shape[-1]) == 0:  # generate() needs at least one token to continue from
            raise PromptError("the prompt is empty (no tokens)")
        room = self.context_size - int(input_ids.shape[-1])
        if room <= 0:
            raise PromptError(
                f"the prompt is {input_ids.shape[-1]} tokens; the context size is {self.context_size}"
            )
        max_new = room if max_tokens is None else min(max_tokens, room)
        return Prompt(text, input_ids.to(self.model.device), max_new, extra)

    def generation_kwargs(self, params: SamplingParams) -> dict[str, Any]:
        kwargs: dict[str, Any] = {}
        if params.temperature is not None:
            kwargs["do_sample"] = params.temperature > 0
            if params.temperature > 0:
                kwargs["temperature"] = params.temperature
            else:  # greedy: clear sampling knobs so the generation config does not warn about them
                kwargs.update(temperature=None, top_p=None, top_k=None)
        if kwargs.get("do_sample", True):
            if params.top_p is not None:
                kwargs["top_p"] = params.top_p
            if params.top_k is not None:
                kwargs["top_k"] = params.top_k
        if params.repetition_penalty is not None:
            kwargs["repetition_penalty"] = params.repetition_penalty
        pad = self.tokenizer.pad_token_id
        kwargs["pad_token_id"] = pad if pad is not None else next(iter(self._eos_ids), None)
        return kwargs


class Generation:
    """One ``model.generate`` in a worker thread, started by iterating; yields visible text pieces.

    Starting on iteration means a response that is never sent never occupies the model.
    ``cancel()`` (client gone, stop sequence seen) stops the model at its next token via a
    StoppingCriteria. After iteration, ``finish_reason`` and the token counts are set.
    """

    def __init__(self, engine: HFEngine, prompt: Prompt, params: SamplingParams, adapter: str | None = None) -> None:
        from transformers import TextIteratorStreamer

        self.engine = engine
        self.adapter = adapter  # the adapter to generate with; None: the bare base model
        self.prompt = prompt
        self.params = params
        self.prompt_tokens = prompt.n_tokens
        self.completion_tokens = 0
        self.finish_reason: str | None = None
        self._cancel = threading.Event()
        self._error: BaseException | None = None
        self._hit_eos = False
        self._stop_seen = False
        self._streamer = TextIteratorStreamer(engine.tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._thread = threading.Thread(target=self._run, name="hf-generate", daemon=True)

    def cancel(self) -> None:
        self._cancel.set()

    def _run(self) -> None:
        from transformers import StoppingCriteriaList

        ended = False
        try:
            # The adapter stays active, and no other request runs, until this generation ends.
            with self.engine.adapters.use(self.adapter) as model:
                if self._cancel.is_set():  # the client left while waiting for its turn
                    return
                if self.params.seed is not None:
                    from transformers import set_seed

                    set_seed(self.params.seed)
                output = model.generate(
                    input_ids=self.prompt.input_ids,
                    attention_mask=self.prompt.input_ids.new_ones(self.prompt.input_ids.shape),
                    max_new_tokens=self.prompt.max_new_tokens,
                    streamer=self._streamer,
                    stopping_criteria=StoppingCriteriaList([_cancel_criteria(self._cancel)]),
                    **self.prompt.extra_inputs,
                    **self.engine.generation_kwargs(self.params),
                )
                ended = True  # generate() ends the streamer itself
                generated = output[0, self.prompt.n_tokens :]
                self.completion_tokens = int(generated.shape[-1])
                self._hit_eos = self.completion_tokens > 0 and int(generated[-1]) in self.engine._eos_ids
                if self._cancel.is_set() and not self._stop_seen:
                    self.engine.log(f"generation cancelled after {self.completion_tokens} tokens")
        except BaseException as exc:  # reported to the reader, who may be an HTTP stream
            self._error = exc
        finally:
            if not ended:
                self._streamer.end()  # unblock the reader

    def __iter__(self) -> Iterator[str]:
        self._thread.start()
        stops = StopSequenceFilter(self.params.stop)
        finished = False
        try:
            for piece in self._streamer:
                visible = stops.feed(piece)
                if visible:
                    yield visible
                if stops.stopped:
                    self._stop_seen = True
                    self.cancel()
                    break
            tail = stops.flush()
            if tail:
                yield tail
            finished = True
        finally:
            if not finished:  # the reader went away (generator closed): stop the model
                self.cancel()
        self._thread.join()
        if self._error is not None:
            raise self._error
        if stops.stopped or self._hit_eos:
            self.finish_reason = "stop"
        elif self.completion_tokens >= self.prompt.max_new_tokens:
            self.finish_reason = "length"
        else:
            self.finish_reason = "stop"

    def text(self) -> str:
        return "".join(self)


def _on_device(value: Any, model: Any) -> Any:
    """A processor output moved to the model: float tensors (pixels) in its dtype, others as they are."""
    if not hasattr(value, "to"):
        return value
    if value.is_floating_point():
        return value.to(model.device, dtype=model.dtype)
    return value.to(model.device)


def _cancel_criteria(event: threading.Event) -> Any:
    """A StoppingCriteria that ends generation once ``event`` is set (built lazily: torch import)."""
    import torch
    from transformers import StoppingCriteria

    class CancelCriteria(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            return torch.full((input_ids.shape[0],), event.is_set(), dtype=torch.bool, device=input_ids.device)

    return CancelCriteria()
