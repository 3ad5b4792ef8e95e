"""Tools without code in the window: the editor dialog, the JSON file it saves, the tool in the list and in use."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
)

from LLM.tests.desktop_app.harness import (
    ScriptedInteraction,
    button,
    click,
    last_answer,
    open_window,
    openai_yaml,
    page,
    run,
    transcript,
    type_and_send,
    wait_until,
)
from LLM.tests.cli.harness import llmctl, write_config

WEATHER_CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
WEATHER_SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string", "description": "The city"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER_FILE = {"name": "get_weather", "description": "The weather in a city.", "parameters": WEATHER_SCHEMA,
                "reply": {"template": "It is sunny in {city}."}}


def open_editor(window) -> QDialog | None:
    found = [d for d in window.findChildren(QDialog, "toolEditor") if d.isVisible()]
    return found[0] if found else None


def problems_shown(dialog: QDialog) -> str:
    return dialog.findChild(QLabel, "toolEditorProblems").text()


def save_button(dialog: QDialog) -> QPushButton:
    return dialog.findChild(QPushButton, "toolSaveButton")


def set_reply(dialog: QDialog, kind: str, text: str) -> None:
    combo = dialog.findChild(QComboBox, "toolReplyKindCombo")
    combo.setCurrentIndex(combo.findData(kind))
    dialog.findChild(QPlainTextEdit, "toolReplyEdit").setPlainText(text)


def list_names(tools) -> list[str]:
    return [tools.tool_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(tools.tool_list.count())]


def select_tool(tools, name: str) -> None:
    tools.tool_list.setCurrentRow(list_names(tools).index(name))


def test_tool_editor_new_tool_is_saved_listed_checked_and_answers_a_call(qloop, fake_server, tmp_path):
    tools_dir = tmp_path / "xdg" / "llm-workbench" / "tools"  # where llmctl() below looks, via XDG_CONFIG_HOME
    fake_server.script({"tool_calls": [WEATHER_CALL]}, {"text": "done"})

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), tools_dir=tools_dir) as window:
            tools = page(window, "toolChatPage")
            window.tabs.setCurrentWidget(tools)
            click(button(tools, "newToolButton"))
            dialog = await wait_until(lambda: open_editor(window), what="the tool editor")
            assert problems_shown(dialog) == ""  # nothing typed yet: nothing is wrong (#22)
            QTest.keyClicks(dialog.findChild(QLineEdit, "toolNameEdit"), "get_weather")
            dialog.findChild(QLineEdit, "toolDescriptionEdit").setText("The weather in a city.")
            # The schema editor starts with an example that has a "city" parameter: the template uses it.
            assert json.loads(dialog.findChild(QPlainTextEdit, "toolSchemaEdit").toPlainText()) == WEATHER_SCHEMA
            set_reply(dialog, "template", "It is sunny in {city}.")
            assert save_button(dialog).isEnabled(), problems_shown(dialog)
            assert problems_shown(dialog) == f"Saves as {tools_dir / 'get_weather.json'}"
            click(save_button(dialog))
            await wait_until(lambda: open_editor(window) is None, what="the editor to close")

            assert json.loads((tools_dir / "get_weather.json").read_text()) == WEATHER_FILE
            assert list_names(tools)[-1] == "get_weather" and "get_weather" in tools.enabled_tools()
            choice = tools.findChild(QComboBox, "toolChoiceCombo")
            assert choice.findData("get_weather") >= 0
            assert button(tools, "editToolButton").isEnabled()  # the new tool is selected, and editable

            type_and_send(tools, "Weather in Paris?")
            await wait_until(lambda: last_answer(tools).status == "done", what="tool answer")
            answer = last_answer(tools)
            (card,) = answer.tool_cards
            assert (card.name, card.arguments, card.ok, card.output) == (
                "get_weather", {"city": "Paris"}, True, "It is sunny in Paris.")
            (card_widget,) = transcript(tools).widget_for(answer.id).tool_cards()
            assert "It is sunny in Paris." in card_widget.text()
            assert answer.content == "done"

    run(qloop, go())
    first = fake_server.requests()[0]["body"]
    (sent,) = [t["function"] for t in first["tools"] if t["function"]["name"] == "get_weather"]
    assert sent == {"name": "get_weather", "description": "The weather in a city.", "parameters": WEATHER_SCHEMA}

    # llmctl loads the very file the window saved.
    fake_server.script({"tool_calls": [WEATHER_CALL]}, {"text": "done"})
    out = llmctl(write_config(tmp_path, fake_server), "run", "-m", "fake", "--tools", "get_weather",
                 "--tool-mode", "native", "Weather in Paris?")
    assert out.returncode == 0, out.stderr
    assert "] It is sunny in Paris.\n" in out.stdout and "[tools] skipped" not in out.stderr


def test_tool_editor_bad_definition_cannot_be_saved_and_the_dialog_says_why(qloop, fake_server, tmp_path):
    tools_dir = tmp_path / "tools"

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), tools_dir=tools_dir) as window:
            tools = page(window, "toolChatPage")
            before, registered = list_names(tools), window.ctx.runtime.tools.names()
            click(button(tools, "newToolButton"))
            dialog = await wait_until(lambda: open_editor(window), what="the tool editor")
            dialog.findChild(QLineEdit, "toolNameEdit").setText("get_weather")
            dialog.findChild(QLineEdit, "toolDescriptionEdit").setText("The weather in a city.")
            set_reply(dialog, "template", "It is sunny in {city}.")
            schema = dialog.findChild(QPlainTextEdit, "toolSchemaEdit")
            for text, why in [
                ('{"type": "object", "properties": {"city": {"type": "strng"}}}',
                 '• parameters.properties.city.type: unknown type "strng" (did you mean "string"?)'),
                ('{"type": "object",\n "properties": {}', "• parameters: not valid JSON: Expecting ',' delimiter "
                                                         "(line 2, column 18)"),
                ('{"type": "array"}', '• parameters.type: must be "object" (a tool takes named arguments), got '
                                      '"array"'),
                ('{"type": "object", "properties": {"town": {"type": "string"}}}',
                 "• reply.template: placeholder {city} names no declared parameter (declared: town; a placeholder is "
                 "a plain parameter name, with no attribute, index or format)"),
            ]:
                schema.setPlainText(text)  # checked as it is typed: no button to press
                assert problems_shown(dialog) == why
                assert not save_button(dialog).isEnabled()
            schema.setPlainText(json.dumps(WEATHER_SCHEMA))
            set_reply(dialog, "template", "{city.__class__}")
            assert "reply.template: placeholder {city.__class__} names no declared parameter" in problems_shown(dialog)
            set_reply(dialog, "json", '{"sky": }')
            assert problems_shown(dialog) == "• reply.json: not valid JSON: Expecting value (line 1, column 9)"
            set_reply(dialog, "text", "Sunny.")
            dialog.findChild(QLineEdit, "toolNameEdit").setText("calculator")
            assert problems_shown(dialog) == ("• name: 'calculator' is already a tool (a built-in or another file in "
                                              "your tools folder); choose another name")
            assert not save_button(dialog).isEnabled()
            click(dialog.findChild(QPushButton, "toolCancelButton"))
            await wait_until(lambda: open_editor(window) is None, what="the editor to close")
            assert list_names(tools) == before and window.ctx.runtime.tools.names() == registered

    run(qloop, go())
    assert not tools_dir.exists()


def test_tool_editor_broken_file_is_reported_in_the_panel_and_skipped(qloop, fake_server, tmp_path):
    tools_dir = tmp_path / "tools"
    tools_dir.mkdir()
    (tools_dir / "get_weather.json").write_text(json.dumps(WEATHER_FILE))
    (tools_dir / "broken.json").write_text('{"name": "broken",\n')

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), tools_dir=tools_dir) as window:
            tools = page(window, "toolChatPage")
            shown = [label.text() for label in tools.findChildren(QLabel, "toolLoadProblem")]
            assert shown == ["tools/broken.json: not valid JSON: Expecting property name enclosed in double quotes "
                             "(line 2, column 1)"]
            assert "broken" not in list_names(tools) and list_names(tools)[-1] == "get_weather"
            assert "get_weather" not in tools.enabled_tools()  # a loaded tool starts unchecked, like a Python one
            select_tool(tools, "calculator")
            assert not button(tools, "editToolButton").isEnabled()  # a Python tool is edited in its own file
            assert not button(tools, "deleteToolButton").isEnabled()
            select_tool(tools, "get_weather")
            assert button(tools, "editToolButton").isEnabled() and button(tools, "deleteToolButton").isEnabled()

    run(qloop, go())


def test_tool_editor_edits_in_place_and_deletes_after_asking(qloop, fake_server, tmp_path):
    tools_dir = tmp_path / "tools"
    tools_dir.mkdir()
    (tools_dir / "get_weather.json").write_text(json.dumps(WEATHER_FILE))
    interaction = ScriptedInteraction(deletes=(False, True))

    async def go():
        async with open_window(tmp_path, openai_yaml(fake_server.url), tools_dir=tools_dir,
                               interaction=interaction) as window:
            tools = page(window, "toolChatPage")
            tools.set_tool_enabled("get_weather", True)
            row = list_names(tools).index("get_weather")
            select_tool(tools, "get_weather")
            click(button(tools, "editToolButton"))
            dialog = await wait_until(lambda: open_editor(window), what="the tool editor")
            assert dialog.findChild(QLineEdit, "toolNameEdit").text() == "get_weather"
            assert dialog.findChild(QPlainTextEdit, "toolReplyEdit").toPlainText() == "It is sunny in {city}."
            assert save_button(dialog).isEnabled()  # its own name is not "taken"
            set_reply(dialog, "json", '{"sky": "clear", "temperature": 21}')
            click(save_button(dialog))
            await wait_until(lambda: open_editor(window) is None, what="the editor to close")

            saved = json.loads((tools_dir / "get_weather.json").read_text())
            assert saved["reply"] == {"json": {"sky": "clear", "temperature": 21}}
            assert list_names(tools).index("get_weather") == row and "get_weather" in tools.enabled_tools()
            result = await window.ctx.runtime.tools.execute("get_weather", {"city": "Oslo"})
            assert result.output == '{"sky": "clear", "temperature": 21}'

            click(button(tools, "deleteToolButton"))  # answered "keep"
            await wait_until(lambda: len(interaction.questions) == 1 and button(tools, "deleteToolButton").isEnabled(),
                             what="the first question")
            assert (tools_dir / "get_weather.json").exists() and "get_weather" in list_names(tools)
            click(button(tools, "deleteToolButton"))  # answered "delete"
            await wait_until(lambda: "get_weather" not in list_names(tools), what="the tool to go")
            assert not (tools_dir / "get_weather.json").exists() and "get_weather" not in window.ctx.runtime.tools
            assert tools.findChild(QComboBox, "toolChoiceCombo").findData("get_weather") < 0

    run(qloop, go())
    assert interaction.questions == [("delete_tool", "get_weather", str(tools_dir / "get_weather.json"))] * 2
