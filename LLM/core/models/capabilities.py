"""What a model can do, with a confidence and a source, from the evidence at hand (pure; nothing is loaded).

``assess`` is the one answer every front end uses. It gathers clues from each source and lets, for each
capability, the strongest source that has an answer decide:

====================  ===========  ==============================================================================
source                confidence   what it is
====================  ===========  ==============================================================================
declared              1.0          llm_backends.yaml: ``capabilities:`` and ``model_type: base`` (no chat)
probe                 0.95         a live test against the running model (the caller ran it)
engine                0.9          llama-server's /props: chat_template_caps (minja renders the template itself)
                                   and modalities (a projector is loaded)
template              0.4 - 0.9    ``probe_template`` of the chat template, by how direct the render was: the
                                   probe tool's name in the output 0.9, a raise 0.8-0.9, a word in the source 0.4
metadata              0.5 - 0.8    what the files say: a vision tower or projector, pooling (embedding), general
                                   tags, tool or thinking tokens in the vocabulary, no chat template at all
name                  0.3 - 0.45   the name: -Instruct, R1/QwQ/thinking, VL/llava, embed/bge/e5, hermes/qwen2.5
====================  ===========  ==============================================================================

Why this order: what a person wrote down beats anything inferred, a test of the live model beats reading
its files, the engine's own reading of the template is what the server will actually do, our render of the
template is direct evidence of the prompt format, file metadata is indirect, a name is a guess.

Combining. Within a capability the strongest source wins outright (so one clear fact is never outvoted by
several guesses). Each weaker source that agrees adds 0.05, up to 0.1 more and never past 0.99; each that
disagrees is named in ``detail`` ("... (name disagrees)") and lowers nothing, so a front end can show it.

Dependencies. A model that does not chat can do nothing that happens in a chat: when ``chat`` is false,
``tools``, ``system_role`` and ``reasoning`` are false too, and ``parallel_tool_calls`` follows ``tools``;
an embedding model does not chat. The parent overrides a child only when it is at least as sure as the
child's own answer, and never a child that was declared or probed.

No evidence. ``chat`` defaults to true (0.3): the yaml's model_type defaults to instruct, and a remote
model known only by its name ("gpt-4o") should stay usable. ``system_role`` follows chat (0.3): almost every
chat template accepts one, and refusing it would make every front end fold system prompts into user turns
for nothing. Everything else defaults to false with confidence 0.2 and detail "no evidence": offering tools
or images to a model that cannot take them breaks a conversation, while not offering them only hides an
option the user can declare in the yaml. The default's source is "name", the weakest.

For tools, ``detail`` starts with the call format when one is known ("hermes: template renders the tool
list"); ``tool_call_format`` reads it back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import TYPE_CHECKING, Mapping

from ..protocol.props import EngineProps
from .info import ModelInfo

if TYPE_CHECKING:  # templates.py (and jinja2 with it, ~40 ms) loads when a template is first probed, not with
    from .templates import TemplateFindings  # LLM.core: most commands never judge a model

CAPABILITIES = ("chat", "tools", "parallel_tool_calls", "reasoning", "system_role", "vision", "audio", "embedding")
SOURCES = ("declared", "probe", "engine", "template", "metadata", "name")  # strongest first

AGREEMENT_BONUS = 0.05
MAX_BONUS = 0.1
NO_EVIDENCE = 0.2


@dataclass(frozen=True)
class Capability:
    """One answer: the value, how sure (0..1), which source decided and a short why."""

    value: bool
    confidence: float  # 0..1
    source: str  # one of SOURCES
    detail: str = ""

    def to_json(self) -> dict:
        return {"value": self.value, "confidence": round(self.confidence, 3), "source": self.source,
                "detail": self.detail}


@dataclass(frozen=True)
class _Clue:
    value: bool
    confidence: float
    source: str
    detail: str


def assess(*, info: ModelInfo | None = None, name: str = "", model_type: str = "instruct",
           declared: Mapping[str, bool] | None = None, engine: EngineProps | None = None,
           probe: Mapping[str, bool] | None = None, template: TemplateFindings | None = None,
           ) -> dict[str, Capability]:
    """Every capability in CAPABILITIES decided from the evidence given (see the module docstring)."""
    clues: dict[str, list[_Clue]] = {capability: [] for capability in CAPABILITIES}

    def add(capability: str, value: bool, confidence: float, source: str, detail: str) -> None:
        clues[capability].append(_Clue(bool(value), confidence, source, detail))

    for capability, value in (declared or {}).items():
        if capability in clues and isinstance(value, bool):
            add(capability, value, 1.0, "declared", "declared in llm_backends.yaml")
    if model_type == "base" and not any(c.source == "declared" for c in clues["chat"]):
        add("chat", False, 1.0, "declared", "model_type: base")
    for capability, value in (probe or {}).items():
        if capability in clues and isinstance(value, bool):
            add(capability, value, 0.95, "probe", "a live test")
    if engine is not None:
        _engine_clues(engine, add)
    if template is None:
        text = (info.chat_template if info is not None else None) or (engine.chat_template if engine else None)
        if text:
            from .templates import probe_template

            template = probe_template(text)
    if template is not None:
        _template_clues(template, add)
    if info is not None:
        _metadata_clues(info, add)
    _name_clues(name or _info_name(info), add)

    result = {capability: _decide(clues[capability]) for capability in CAPABILITIES}
    _apply_dependencies(result, clues)
    _fill_defaults(result)
    return _with_call_format(result, template, info)


def tool_call_format(capabilities: Mapping[str, Capability]) -> str | None:
    """The call format assess found for tools ("hermes", "llama3_json", ...), or None."""
    tools = capabilities.get("tools")
    if tools is None or not tools.value:
        return None
    head = tools.detail.split(":", 1)[0]
    from .templates import TOOL_FORMATS

    return head if head in TOOL_FORMATS else None


# ---------------------------------------------------------------------------------------------------------
# Clues from each source.

def _engine_clues(engine: EngineProps, add) -> None:
    for capability, flag in (("tools", engine.supports_tools), ("system_role", engine.supports_system_role),
                             ("parallel_tool_calls", engine.supports_parallel_tool_calls)):
        if flag is not None:
            add(capability, flag, 0.9, "engine", f"llama-server /props: {'supports' if flag else 'no'} {capability}")
    # parse_props keeps only the modalities that are on, so "off" is known only where the engine sent the map.
    sent = isinstance(engine.raw.get("modalities"), dict) if isinstance(engine.raw, dict) else False
    for capability in ("vision", "audio"):
        if capability in engine.modalities:
            add(capability, True, 0.9, "engine", f"llama-server has {capability} loaded")
        elif sent:
            add(capability, False, 0.9, "engine", f"llama-server has no {capability} loaded")


def _template_clues(findings: TemplateFindings, add) -> None:
    if not findings.rendered:
        return
    confidence, why = findings.confidence, findings.why
    for capability, value, key in (("chat", True, "chat"), ("system_role", findings.system_role, "system_role"),
                                   ("tools", findings.tools, "tools"),
                                   ("parallel_tool_calls", findings.parallel_calls, "parallel_calls"),
                                   ("reasoning", findings.reasoning, "reasoning")):
        if value is not None:
            add(capability, value, confidence.get(key, 0.6), "template", f"template {why.get(key, '')}".strip())


_TOOL_TOKENS = {  # vocabulary tokens that only tool-trained models have, and the format they imply
    "<tool_call>": "hermes", "[TOOL_CALLS]": "mistral", "[AVAILABLE_TOOLS]": "mistral",
    "<|python_tag|>": "llama3_json", "<｜tool▁call▁begin｜>": "deepseek", "<｜tool▁calls▁begin｜>": "deepseek",
    "<|tool_call|>": "granite", "<|tool_calls_section_begin|>": "kimi_k2", "<TOOLCALL>": "nemotron",
    "<start_function_call>": "gemma", "<minimax:tool_call>": "minimax", "<seed:tool_call>": "seed_oss",
    "<tools>": None, "<function_call>": None, "<|tool|>": None,
}
_THINK_TOKENS = ("<think>", "</think>", "<seed:think>", "[THINK]", "◁think▷", "<|START_THINKING|>")
_TAGS = {  # general.tags / README tags -> (capability, value)
    "conversational": ("chat", True), "chat": ("chat", True),
    "function-calling": ("tools", True), "function calling": ("tools", True), "tool-use": ("tools", True),
    "tool-calling": ("tools", True), "tools": ("tools", True),
    "reasoning": ("reasoning", True), "thinking": ("reasoning", True), "chain-of-thought": ("reasoning", True),
    "image-text-to-text": ("vision", True), "vision": ("vision", True), "multimodal": ("vision", True),
    "visual-question-answering": ("vision", True), "image-to-text": ("vision", True),
    "audio-text-to-text": ("audio", True), "automatic-speech-recognition": ("audio", True),
    "audio": ("audio", True), "speech": ("audio", True),
    "sentence-similarity": ("embedding", True), "feature-extraction": ("embedding", True),
    "sentence-transformers": ("embedding", True), "embeddings": ("embedding", True),
    "text-embeddings-inference": ("embedding", True),
}


def _metadata_clues(info: ModelInfo, add) -> None:
    for capability, value in (("vision", info.vision), ("audio", info.audio), ("embedding", info.embedding)):
        if value is not None:
            what = {"vision": "a vision tower or projector", "audio": "an audio encoder",
                    "embedding": "an embedding model (pooling, no LM head)"}[capability]
            add(capability, value, 0.8 if value else 0.6, "metadata", what if value else f"no {what.split(' (')[0]}")
    if info.kind in ("gguf", "hf"):
        if info.chat_template:
            add("chat", True, 0.6, "metadata", "has a chat template")
        else:
            add("chat", False, 0.6, "metadata", "no chat template")
    tokens = set(info.special_tokens)
    found = [token for token in _TOOL_TOKENS if token in tokens]
    if found:
        add("tools", True, 0.6, "metadata", f"vocabulary has {found[0]}")
    elif info.response_template:
        add("tools", True, 0.6, "metadata", "tokenizer_config has a response_template")
    thinking = [token for token in _THINK_TOKENS if token in tokens]
    if thinking:
        add("reasoning", True, 0.55, "metadata", f"vocabulary has {thinking[0]}")
    for tag in info.tags:
        hit = _TAGS.get(tag.strip().lower())
        if hit:
            add(hit[0], hit[1], 0.6, "metadata", f"tagged {tag}")


# Names are matched on the last path component, lower-cased, with "_" and spaces read as "-"; a word starts
# and ends at "-", "." or the ends ("gemma-2-9b-it.q4_k_m" has the word "it", "qwen2.5" keeps its dot).
_W = r"(?:^|[-.])"  # a word start
_E = r"(?=$|[-.])"  # a word end
_NAME_RULES = (  # (capability, value, confidence, pattern, what)
    ("chat", False, 0.4, _W + r"(?:base|pt|pretrain(?:ed)?)" + _E, "named a base model"),
    ("chat", True, 0.4, r"instruct|chat|" + _W + r"it" + _E + r"|hermes|zephyr|vicuna|openchat|dolphin|"
                        r"assistant|" + _W + r"(?:sft|dpo|rlhf)" + _E + r"|gpt-[34]|gpt-oss|claude|gemini",
     "named a chat model"),
    ("reasoning", True, 0.4, _W + r"r1" + _E + r"|deepseek-r1|qwq|thinking|reason|magistral|gpt-oss|" + _W +
     r"o[134](?:-mini)?" + _E + r"|exaone-deep|openthinker|deephermes|smollm3|glm-z1|" + _W + r"qwen3(?!.*(?:"
     r"instruct-2507|coder|embed|rerank|vl-\d+b-instruct))", "named a reasoning model"),
    ("vision", True, 0.4, _W + r"vl" + _E + r"|vision|llava|pixtral|moondream|minicpm-v|smolvlm|idefics|"
                          r"paligemma|internvl|molmo|florence|cogvlm|glm-4v|" + _W + r"gemma-3-(?:4|12|27)b|"
                          r"gemma-3n|llama-3\.2-(?:11|90)b|llama-4|" + _W + r"omni" + _E, "named a vision model"),
    ("audio", True, 0.4, r"whisper|audio|voxtral|ultravox|speech|" + _W + r"(?:asr|omni)" + _E + r"|gemma-3n",
     "named an audio model"),
    ("embedding", True, 0.45, r"embed|" + _W + r"(?:bge|e5|gte|minilm|mpnet)" + _E + r"|minilm|sentence-|"
                              r"colbert|rerank|retriev|nomic-embed|mxbai|arctic-embed", "named an embedding model"),
    ("tools", True, 0.35, r"hermes|functionary|qwen-?2\.5|qwen-?3|qwq|llama-?3\.[123]|llama-?4|"
                          r"mistral-(?:7b-instruct-v0\.3|small|large|nemo|medium)|ministral|magistral|devstral|"
                          r"mixtral-8x22b|command-(?:r|a)|granite-?[34]|firefunction|xlam|watt-tool|toolace|hammer|"
                          r"nemotron|gpt-oss|gpt-4|deepseek-(?:v3|r1-0528)|kimi-k2|glm-4|phi-4-mini|smollm3",
     "named a tool-trained family"),
)
_NAME_PATTERNS = tuple((c, v, conf, re.compile(p), what) for c, v, conf, p, what in _NAME_RULES)


def _name_clues(name: str, add) -> None:
    if not name:
        return
    text = re.sub(r"[_\s]+", "-", PurePath(name.strip()).name.lower())
    decided: set[str] = set()
    for capability, value, confidence, pattern, what in _NAME_PATTERNS:
        if capability not in decided and pattern.search(text):
            decided.add(capability)  # the first rule that matches a capability decides it (base before chat)
            add(capability, value, confidence, "name", f"{what} ({name})")


def _info_name(info: ModelInfo | None) -> str:
    if info is None:
        return ""
    return info.name or PurePath(info.path).name


# ---------------------------------------------------------------------------------------------------------
# Deciding.

def _decide(clues: list[_Clue]) -> Capability | None:
    if not clues:
        return None
    ranked = sorted(clues, key=lambda c: (SOURCES.index(c.source), -c.confidence))
    winner = ranked[0]
    others = [c for c in ranked if c.source != winner.source]
    agree = {c.source for c in others if c.value == winner.value}
    disagree = [s for s in SOURCES if any(c.source == s and c.value != winner.value for c in others)]
    confidence = winner.confidence
    if winner.source != "declared" and agree:
        confidence = min(0.99, confidence + min(MAX_BONUS, AGREEMENT_BONUS * len(agree)))
    detail = winner.detail
    if disagree:
        detail += f" ({', '.join(disagree)} {'disagrees' if len(disagree) == 1 else 'disagree'})"
    return Capability(winner.value, round(confidence, 3), winner.source, detail)


_STRICT = ("declared", "probe")  # a child answered by these is never overridden by its parent

_DEPENDS = (  # (child, parent, the parent's value that forces the child false, why)
    ("chat", "embedding", True, "an embedding model"),
    ("tools", "chat", False, "no chat"),
    ("system_role", "chat", False, "no chat"),
    ("reasoning", "chat", False, "no chat"),
    ("parallel_tool_calls", "tools", False, "no tools"),
)


def _apply_dependencies(result: dict[str, Capability | None], clues: dict[str, list[_Clue]]) -> None:
    for child, parent, forcing, why in _DEPENDS:
        cause = result.get(parent)
        if cause is None or cause.value != forcing:
            continue
        own = result.get(child)
        if own is not None and (own.source in _STRICT or own.confidence > cause.confidence):
            continue
        detail = f"{why}: {cause.detail}"
        if own is not None and own.value:
            detail += f" (overrides {own.source}: {own.detail})"
        result[child] = Capability(False, cause.confidence, cause.source, detail)


def _fill_defaults(result: dict[str, Capability | None]) -> None:
    if result["chat"] is None:
        result["chat"] = Capability(True, 0.3, "name", "no evidence; model_type instruct")
    if result["system_role"] is None:
        chat = result["chat"]
        result["system_role"] = (Capability(True, 0.3, "name", "no evidence; most chat templates accept one")
                                 if chat.value else Capability(False, chat.confidence, chat.source, "no chat"))
    for capability in CAPABILITIES:
        if result[capability] is None:
            result[capability] = Capability(False, NO_EVIDENCE, "name", "no evidence")


def _with_call_format(result: dict[str, Capability | None], template: TemplateFindings | None,
                      info: ModelInfo | None) -> dict[str, Capability]:
    tools = result["tools"]
    assert tools is not None
    fmt = template.tool_format if template is not None else None
    if fmt is None and info is not None:
        fmt = next((f for token, f in _TOOL_TOKENS.items() if f and token in info.special_tokens), None)
    if tools.value and fmt:
        result["tools"] = Capability(tools.value, tools.confidence, tools.source, f"{fmt}: {tools.detail}")
    return {capability: result[capability] for capability in CAPABILITIES}  # type: ignore[misc]
