"""A scripted, Qt-free Interaction (desktop_app/interaction.py) for tests: answers from queues, records what was
asked. The window tests pass it to ``open_window``; approval tests drive core's policy through it, no display."""

from __future__ import annotations

import asyncio
from pathlib import Path

from LLM.core import ApprovalDecision
from LLM.desktop_app.interaction import SwitchDecision


class ScriptedInteraction:
    """Answers approval questions from a queue (deny when empty; ``None``: never answers, like a
    dialog left open) and records what was asked."""

    def __init__(self, *answers: ApprovalDecision | None, switches: tuple[SwitchDecision, ...] = (),
                 unloads: tuple[bool, ...] = (), paths: tuple[Path | list[Path] | None, ...] = (),
                 texts: tuple[str | None, ...] = (), deletes: tuple[bool, ...] = (),
                 discards: tuple[bool, ...] = (), removes: tuple[bool, ...] = (),
                 new_tokens: tuple[bool, ...] = ()) -> None:
        self.answers = list(answers)
        self.asked: list[tuple[str, dict]] = []
        self.parents: list[object] = []  # what each approval question was asked over
        self.places: list[str] = []  # where each asked-about tool acts, as the dialog would say
        self.opened: list[Path] = []
        self.cancelled = 0
        self.switches = list(switches)  # answers to "switch while an answer is written?" (cancel when empty)
        self.unloads = list(unloads)  # answers to "unload a model kept forever?" (keep when empty)
        self.questions: list[tuple[str, str, str]] = []
        # Answers to file dialogs (None: cancelled; cancelled when empty); one that chooses several files (attach)
        # takes a list of paths, or a single path as a list of one.
        self.paths = list(paths)
        self.texts = list(texts)  # answers to text questions such as Rename (None: cancelled)
        self.text_errors: list[str] = []  # what an edit dialog showed under its field for a refused answer
        self.deletes = list(deletes)  # answers to "delete this tool?" (keep when empty)
        self.discards = list(discards)  # answers to "clear a base model's text?" (keep when empty)
        self.removes = list(removes)  # answers to "remove this model's entry?" (keep when empty)
        self.new_tokens = list(new_tokens)  # answers to "make a new endpoint token?" (keep when empty)
        self.path_kinds: list[str] = []  # the kind of each file dialog asked (export, import, suite, ...)
        self.shown: list = []  # what was shown to read (About, the shortcuts): Questions

    async def approve_tool(self, parent, call, tool, where: str = "") -> ApprovalDecision:
        self.asked.append((tool.name, dict(call.arguments)))
        self.places.append(where)
        self.parents.append(parent)
        answer = self.answers.pop(0) if self.answers else ApprovalDecision.DENY
        if answer is None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled += 1
                raise
        return answer

    async def confirm_switch(self, parent, current: str, new: str) -> SwitchDecision:
        self.questions.append(("switch", current, new))
        return self.switches.pop(0) if self.switches else SwitchDecision.CANCEL

    async def confirm_unload(self, parent, victim: str, starting: str) -> bool:
        self.questions.append(("unload", victim, starting))
        return self.unloads.pop(0) if self.unloads else False

    async def confirm_delete_tool(self, parent, name: str, path: Path) -> bool:
        self.questions.append(("delete_tool", name, str(path)))
        return self.deletes.pop(0) if self.deletes else False

    async def confirm_remove_model(self, parent, model_id: str, path: Path) -> bool:
        self.questions.append(("remove_model", model_id, str(path)))
        return self.removes.pop(0) if self.removes else False

    async def confirm_discard_text(self, parent, model: str) -> bool:
        self.questions.append(("discard_text", model, ""))
        return self.discards.pop(0) if self.discards else False

    async def confirm_new_token(self, parent) -> bool:
        self.questions.append(("new_token", "", ""))
        return self.new_tokens.pop(0) if self.new_tokens else False

    def open_path(self, path: Path) -> None:
        self.opened.append(Path(path))

    async def choose_save_path(self, parent, title: str, suggested: str, file_filter: str,
                               kind: str = "file") -> Path | None:
        self.questions.append(("save", title, suggested))
        self.path_kinds.append(kind)
        return self.paths.pop(0) if self.paths else None

    async def choose_open_path(self, parent, title: str, file_filter: str, kind: str = "file") -> Path | None:
        self.questions.append(("open", title, file_filter))
        self.path_kinds.append(kind)
        return self.paths.pop(0) if self.paths else None

    async def choose_open_paths(self, parent, title: str, file_filter: str, kind: str = "file") -> list[Path]:
        self.questions.append(("open_many", title, file_filter))
        self.path_kinds.append(kind)
        answer = self.paths.pop(0) if self.paths else None
        return [] if answer is None else [Path(p) for p in answer] if isinstance(answer, (list, tuple)) \
            else [Path(answer)]

    async def choose_folder(self, parent, title: str, kind: str = "folder") -> Path | None:
        self.questions.append(("folder", title, ""))
        self.path_kinds.append(kind)
        return self.paths.pop(0) if self.paths else None

    async def inform(self, parent, question) -> None:
        self.shown.append(question)

    async def ask_text(self, parent, title: str, label: str, text: str, multiline: bool = False,
                       validate=None) -> str | None:
        """Like the dialog: an answer that ``validate`` refuses is typed, its error recorded in ``text_errors``
        (what the dialog would show under the field), and the next scripted answer is tried; cancelled when
        none is left."""
        self.questions.append(("text", title, text))
        while self.texts:
            answer = self.texts.pop(0)
            problem = validate(answer) if validate is not None and answer is not None else None
            if not problem:
                return answer
            self.text_errors.append(problem)
        return None
