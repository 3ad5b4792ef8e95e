"""The Berkeley Function Calling Leaderboard's single-turn categories as a report card per model.

``data`` (BFCL's files -> tasks; pure once read), ``fetch`` (the dataset from the Hugging Face Hub on first
use), ``convert`` (function docs offered as OpenAI tools, as BFCL does for function-calling models),
``checker`` (BFCL's AST rules on the decoded calls), ``runner`` (the tasks through the tool loop, concurrent
and resumable) and ``store`` (runs and results in the history database). The workbench imports these through
``LLM.core.evaluation``; this face names the pure pieces.
"""

from .checker import Verdict, check_ast, check_relevance, decoder_failure, no_call_verdict
from .convert import NameMap, to_openai_tools

__all__ = [
    "NameMap",
    "Verdict",
    "check_ast",
    "check_relevance",
    "decoder_failure",
    "no_call_verdict",
    "to_openai_tools",
]
