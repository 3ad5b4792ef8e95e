"""python -m LLM: the llmctl command line."""

import sys

from .cli import main

sys.exit(main())
