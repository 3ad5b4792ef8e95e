"""What a chat template does, read off sandboxed renders of probe conversations (the template is untrusted code).

``probe_template`` renders the template a few times with made-up conversations whose texts are unique
markers, and decides from the output, not from substrings of the source (what Ollama and Jan do):

* system role: does the system marker show up, does the template ``raise_exception``, or drop it;
* tools: does the probe tool's unique name or description show up when ``tools=`` is passed (compared with
  the same render without tools, so a template that ignores ``tools`` is told apart);
* tool calls: how an assistant turn with ``tool_calls`` renders names the call format (hermes, llama3_json,
  mistral, ...), and whether a turn with two calls shows both (parallel calls);
* reasoning: does the generation prompt open ``<think>``, does ``enable_thinking`` change the prompt, does an
  assistant's ``reasoning_content`` render, are ``<think>`` blocks dropped from earlier turns.

Each answer carries a confidence saying how direct its evidence was (the marker rendered: ~0.9; only a word in
the source: 0.4). A render that raises gives "unknown" (None) for what it probed, never an exception.

The sandbox (template_sandbox.py): the template is untrusted code; a render that hits a limit or a sandbox
refusal stops the whole probe, and ``TemplateFindings.error`` says which.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from jinja2.exceptions import SecurityError

from .template_sandbox import MAX_TEMPLATE_CHARS, SandboxEnvironment, TemplateRaised

TIME_BUDGET_S = 1.0  # the whole probe; a typical template takes a few milliseconds

# Call formats recognized in a rendered assistant turn (the names the tool-call parsers use where they exist).
TOOL_FORMATS = (
    "hermes", "qwen3_xml", "llama3_json", "mistral", "deepseek", "functionary", "command_r", "granite", "phi4",
    "firefunction", "gemma", "harmony", "kimi_k2", "glm4", "minimax", "seed_oss", "nemotron", "pythonic",
    "unknown-json",
)


@dataclass(frozen=True)
class TemplateFindings:
    """What rendering a chat template showed. None: the probes could not tell (the render raised)."""

    rendered: bool  # a plain user turn rendered at all
    system_role: bool | None = None
    tools: bool | None = None  # the template renders the tool list passed as ``tools``
    tool_calls: bool | None = None  # an assistant turn's ``tool_calls`` show up in the prompt
    tool_format: str | None = None  # one of TOOL_FORMATS when tool_calls shows a known shape
    parallel_calls: bool | None = None  # a turn with two calls shows both
    reasoning: bool | None = None
    error: str | None = None  # the first failure that was not the template's own raise_exception
    # Per finding name ("chat", "system_role", "tools", "tool_calls", "parallel_calls", "reasoning"):
    confidence: Mapping[str, float] = field(default_factory=dict, hash=False)
    why: Mapping[str, str] = field(default_factory=dict, hash=False)


def probe_template(template: str, bos_token: str = "", eos_token: str = "", *,
                   time_budget_s: float = TIME_BUDGET_S) -> TemplateFindings:
    """Render ``template`` with probe conversations in the sandbox and say what it supports; never raises."""
    if not isinstance(template, str) or not template.strip():
        return TemplateFindings(rendered=False, error="no chat template")
    if len(template) > MAX_TEMPLATE_CHARS:
        return TemplateFindings(rendered=False, error=f"template too large ({len(template)} characters)")
    env = SandboxEnvironment(time.perf_counter() + time_budget_s)
    try:
        compiled = env.from_string(template)
    except Exception as exc:  # syntax errors, RecursionError from absurd nesting, limits hit by constant folding
        return TemplateFindings(rendered=False, error=f"compile: {_describe(exc)}")
    probe = _Probe(env, compiled, bos_token, eos_token, template)
    try:
        return probe.run()
    except _Abort as abort:
        return TemplateFindings(rendered=False, error=str(abort))
    except Exception as exc:  # a bug of ours must not take the caller down either
        return TemplateFindings(rendered=False, error=f"probe: {_describe(exc)}")


# ---------------------------------------------------------------------------------------------------------
# The probe conversations. Every text is a marker no real template contains.

_USER = "probe-user-kq3v"
_USER2 = "probe-user-second-kq3v"
_SYSTEM = "probe-system-q7xw"
_ANSWER = "probe-answer-m2pd"
_REASON = "probe-reasoning-h8ts"
_RESULT = "probe-result-w4nc"
_TOOL = "probe_lookup_zq7"
_TOOL2 = "probe_fetch_zq8"
_TOOL_DESC = "probe-tool-description-r3tb"
_ARG = "probe_query"


def _tool_schema(nested: bool) -> dict[str, Any]:
    function = {"name": _TOOL, "description": _TOOL_DESC,
                "parameters": {"type": "object", "required": [_ARG],
                               "properties": {_ARG: {"type": "string", "description": "What to look up."}}}}
    return {"type": "function", "function": function} if nested else function


def _call(name: str, call_id: str, value: str, string_args: bool) -> dict[str, Any]:
    arguments: Any = {_ARG: value}
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": json.dumps(arguments) if string_args else arguments}}


def _call_turns(names: tuple[str, ...], with_results: bool, string_args: bool) -> list[dict[str, Any]]:
    ids = ["prbcall01", "prbcall02"]  # Mistral's templates insist on 9-character alphanumeric ids
    calls = [_call(name, ids[i], f"probe-value-{i}", string_args) for i, name in enumerate(names)]
    turns: list[dict[str, Any]] = [{"role": "user", "content": _USER},
                                   {"role": "assistant", "content": "", "tool_calls": calls}]
    if with_results:
        turns += [{"role": "tool", "tool_call_id": ids[i], "name": name, "content": f"{_RESULT}-{i}"}
                  for i, name in enumerate(names)]
    return turns


_THINK_OPEN = re.compile(r"<think>|<seed:think>|\[THINK\]|<thinking>|◁think▷|<\|channel\|>analysis"
                         r"|<\|begin_of_thought\|>|<\|START_THINKING\|>")
_THINK_WORDS = re.compile(r"enable_thinking|reasoning_content|<think>|</think>|\bthinking\b|reasoning_effort"
                          r"|\[THINK\]|<seed:think>")
_TOOL_WORDS = re.compile(r"\btools\b|tool_calls")

# (format, pattern over the assistant turn) most specific first; {name} is the probe tool's name.
_CALL_SHAPES = (
    ("deepseek", r"<｜tool▁calls?▁begin｜>"),
    ("kimi_k2", r"<\|tool_calls?_section_begin\|>|<\|tool_call_begin\|>"),
    ("harmony", r"to=functions\.{name}"),
    ("minimax", r"<minimax:tool_call>"),
    ("seed_oss", r"<seed:tool_call>"),
    ("glm4", r"<tool_call>\s*{name}\s*<arg_key>"),
    ("qwen3_xml", r"<tool_call>\s*<function={name}>"),
    ("hermes", r"<tool_call>\s*(?:```(?:json)?\s*)?[\[{]"),
    ("mistral", r"\[TOOL_CALLS\]"),
    ("phi4", r"<\|tool_call\|>.*<\|/tool_call\|>"),
    ("granite", r"<\|tool_call\|>"),
    ("nemotron", r"<TOOLCALL>"),
    ("functionary", r">>>\s*{name}|<function={name}>"),
    ("command_r", r"Action:\s*```json|\"tool_name\"\s*:\s*\"{name}\""),
    ("firefunction", r"functools\["),
    ("gemma", r"<start_function_call>|<\|tool_call>|call:{name}\{"),
    ("llama3_json", r"\{\s*\"(?:name|function)\"\s*:\s*\"{name}\"\s*,\s*\"parameters\"\s*:|<\|python_tag\|>"),
    ("pythonic", r"{name}\((?:\w+\s*=|\))"),
    ("unknown-json", r"\"{name}\""),
)
_CALL_PATTERNS = tuple((fmt, re.compile(pattern.replace("{name}", re.escape(_TOOL)), re.DOTALL))
                       for fmt, pattern in _CALL_SHAPES)


def _call_format(turn: str) -> str | None:
    """The call format of a rendered assistant turn that calls the probe tool; None when unrecognized."""
    for fmt, pattern in _CALL_PATTERNS:
        if pattern.search(turn):
            return fmt
    return None


@dataclass
class _Outcome:
    text: str | None = None  # the output, when the render finished
    raised: str | None = None  # the template's own raise_exception message
    failed: str | None = None  # any other exception


class _Abort(Exception):
    """A limit or a sandbox refusal: stop probing this template."""


class _Probe:
    """The probe renders of one template and the findings read off them."""

    def __init__(self, env: SandboxEnvironment, compiled: Any, bos: str, eos: str, source: str) -> None:
        self.env, self.compiled, self.source = env, compiled, source
        self.specials = {"bos_token": bos, "eos_token": eos}
        self.first_error: str | None = None
        self.tool_format: str | None = None
        self.values: dict[str, bool | None] = {}
        self.confidence: dict[str, float] = {}
        self.why: dict[str, str] = {}

    def render(self, messages: list[dict[str, Any]], **extra: Any) -> _Outcome:
        context = {"messages": messages, "tools": None, "documents": None, "add_generation_prompt": False,
                   **self.specials, **extra}
        try:
            return _Outcome(text=self.env.render(self.compiled, context))
        except TemplateRaised as exc:
            return _Outcome(raised=str(exc)[:200])
        except (SecurityError, MemoryError) as exc:
            raise _Abort(_describe(exc)) from exc
        except Exception as exc:  # the template's bugs (TypeError, UndefinedError, ...) and RecursionError
            return _Outcome(failed=_describe(exc))

    def note(self, name: str, value: bool | None, confidence: float, why: str) -> None:
        self.values[name] = value
        self.why[name] = why
        if value is not None:
            self.confidence[name] = confidence
        elif self.first_error is None:  # a probe left unknown by a failure (not by a variant later retried)
            self.first_error = f"{name}: {why}"

    def run(self) -> TemplateFindings:
        user = [{"role": "user", "content": _USER}]
        plain = self.render(user)
        prompt = self.render(user, add_generation_prompt=True)
        if plain.text is None or prompt.text is None:
            bad = plain if plain.text is None else prompt
            reason = f"template raised: {bad.raised}" if bad.raised is not None else bad.failed
            return TemplateFindings(rendered=False, error=reason)
        self.note("chat", True, 0.7, "renders a conversation")
        self.system_role()
        self.tools(prompt.text)
        self.tool_calls()
        self.reasoning(plain.text, prompt.text)
        return TemplateFindings(
            rendered=True, system_role=self.values.get("system_role"), tools=self.values.get("tools"),
            tool_calls=self.values.get("tool_calls"), tool_format=self.tool_format,
            parallel_calls=self.values.get("parallel_calls"), reasoning=self.values.get("reasoning"),
            error=self.first_error, confidence=dict(self.confidence), why=dict(self.why))

    def system_role(self) -> None:
        out = self.render([{"role": "system", "content": _SYSTEM}, {"role": "user", "content": _USER}])
        if out.text is not None:
            if _SYSTEM in out.text:
                self.note("system_role", True, 0.9, "renders the system message")
            else:
                self.note("system_role", False, 0.8, "drops the system message")
        elif out.raised is not None:
            self.note("system_role", False, 0.9, f"raises on a system message: {out.raised}")
        else:
            self.note("system_role", None, 0.0, f"fails to render: {out.failed}")

    def tools(self, without: str) -> None:
        user = [{"role": "user", "content": _USER}]
        outcomes = []
        for nested in (True, False):  # OpenAI's {"type": "function", "function": {...}}, then the bare function
            out = self.render(user, tools=[_tool_schema(nested)], add_generation_prompt=True)
            outcomes.append(out)
            if out.text is not None and (_TOOL in out.text or _TOOL_DESC in out.text):
                self.note("tools", True, 0.9, "renders the tool list")
                return
            if out.text is not None:
                break
        out = outcomes[-1]
        if out.text is not None and out.text == without:
            # Some templates show tools only beside a system message; give them that chance.
            system = [{"role": "system", "content": _SYSTEM}, user[0]]
            with_system = self.render(system, tools=[_tool_schema(True)])
            if with_system.text is not None and _TOOL in with_system.text:
                self.note("tools", True, 0.85, "renders the tool list beside a system message")
            else:
                self.note("tools", False, 0.85, "ignores the tools passed to it")
        elif out.text is not None:
            self.note("tools", True, 0.6, "changes the prompt with tools, though the tool itself is not shown")
        elif out.raised is not None:
            self.note("tools", False, 0.8, f"raises when given tools: {out.raised}")
        elif _TOOL_WORDS.search(self.source):
            self.note("tools", True, 0.4, f"mentions tools in its source, but fails to render them: {out.failed}")
        else:
            self.note("tools", None, 0.0, f"fails to render: {out.failed}")

    def tool_calls(self) -> None:
        # With and without a tool result (some templates refuse the tool role), with the arguments as an object
        # (transformers) and as a JSON string (OpenAI; templates that concatenate them).
        variants = [(results, string_args) for results in (True, False) for string_args in (False, True)]
        raised: list[str] = []
        failure = ""
        for with_results, string_args in variants:
            out = self.render(_call_turns((_TOOL,), with_results, string_args), add_generation_prompt=with_results)
            if out.text is None:
                if out.raised is not None:
                    raised.append(out.raised)
                failure = f"raises: {out.raised}" if out.raised is not None else f"fails to render: {out.failed}"
                continue
            turn = _assistant_turn(out.text)
            if _TOOL not in turn:
                self.note("tool_calls", False, 0.85, "drops an assistant's tool calls")
                return
            self.tool_format = _call_format(turn)
            shown = f"renders tool calls as {self.tool_format}" if self.tool_format else "renders tool calls"
            self.note("tool_calls", True, 0.9, shown)
            if self.values.get("tools") is None:
                self.note("tools", True, 0.6, f"{shown}; the tool list probe could not tell")
            self.parallel_calls(with_results, string_args)
            return
        if len(raised) == len(variants):  # the template's own refusal, every time
            self.note("tool_calls", False, 0.8, f"raises on tool calls: {raised[-1]}")
        else:
            self.note("tool_calls", None, 0.0, failure)

    def parallel_calls(self, with_results: bool, string_args: bool) -> None:
        out = self.render(_call_turns((_TOOL, _TOOL2), with_results, string_args),
                          add_generation_prompt=with_results)
        if out.text is not None:
            turn = _assistant_turn(out.text)
            if _TOOL in turn and _TOOL2 in turn:
                self.note("parallel_calls", True, 0.85, "renders both of two tool calls")
            else:
                self.note("parallel_calls", False, 0.8, "renders only one of two tool calls")
        elif out.raised is not None:
            self.note("parallel_calls", False, 0.85, f"raises on two tool calls: {out.raised}")
        else:
            self.note("parallel_calls", None, 0.0, f"fails to render: {out.failed}")

    def reasoning(self, plain: str, prompt: str) -> None:
        user = [{"role": "user", "content": _USER}]
        signs: list[tuple[float, str]] = []
        opening = prompt[len(_common_prefix(plain, prompt)):]
        if _THINK_OPEN.search(opening):
            signs.append((0.9, "opens a thinking block in the generation prompt"))
        on = self.render(user, add_generation_prompt=True, enable_thinking=True, thinking=True)
        off = self.render(user, add_generation_prompt=True, enable_thinking=False, thinking=False)
        if on.text is not None and off.text is not None and on.text != off.text:
            signs.append((0.85, "changes the prompt with enable_thinking"))
        turn = {"role": "assistant", "content": _ANSWER, "reasoning_content": _REASON, "thinking": _REASON,
                "reasoning": _REASON}
        shown = self.render([user[0], turn])
        if shown.text is not None and _REASON in shown.text and "reasoning_content" not in shown.text:
            signs.append((0.75, "renders an assistant's reasoning"))
        earlier = {"role": "assistant", "content": f"<think>\n{_REASON}\n</think>\n\n{_ANSWER}"}
        stripped = self.render([user[0], earlier, {"role": "user", "content": _USER2}], add_generation_prompt=True)
        if stripped.text is not None and _ANSWER in stripped.text and _REASON not in stripped.text:
            signs.append((0.75, "drops <think> blocks from earlier turns"))
        if signs:
            best, why = max(signs)
            self.note("reasoning", True, min(0.95, best + 0.05 * (len(signs) - 1)), why)
        elif _THINK_WORDS.search(self.source):
            self.note("reasoning", True, 0.4, "mentions thinking in its source, though no render shows it")
        else:
            self.note("reasoning", False, 0.6, "shows no reasoning in any render")


def _assistant_turn(text: str) -> str:
    """The rendered assistant turn of a call probe: after the user's text, before the first tool result."""
    start = text.find(_USER)
    start = 0 if start < 0 else start + len(_USER)
    end = text.find(_RESULT, start)
    return text[start:] if end < 0 else text[start:end]


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return a[:n]


def _describe(exc: BaseException) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}"[:200] if message else type(exc).__name__
