"""``python -m LLM.desktop_app``: the same as the ``llm-desktop`` command."""

import sys

from .app import main

sys.exit(main())
