"""Knowing models without loading them: inspection, capabilities with confidence, memory fit, the curated
catalog and recommendations, downloads from the Hugging Face Hub, and adding entries to llm_backends.yaml.

The map, leaves first::

    gguf.py          a GGUF header: metadata and tensor descriptions (tensor data is never read)
    info.py          ModelInfo: what inspection found (plain data)
    inspection.py    GGUF (split too), mmproj, GGUF LoRA, HF folder, PEFT folder -> ModelInfo; cached by stamp
    template_sandbox.py  jinja2's immutable sandbox with size, step, depth and time limits (templates are code)
    templates.py     a chat template rendered in that sandbox with probe inputs: what it really does
    capabilities.py  every source of evidence folded into one answer per capability, with confidence and source
    system.py        this machine: memory, GPU memory, CPU features, free disk
    fit.py           memory estimate (weights + KV cache + buffers) and whether it fits
    report.py        one model judged: inspection + capabilities + estimate + fit
    catalog.py       the curated catalog (catalog.json), ranked per task for this machine; the user's overrides
    downloads.py     fetching files through huggingface_hub: progress, resume, cancel, sha256, typed errors
    yaml_entries.py  adding and removing entries of llm_backends.yaml as text (comments kept)
    new_entry.py     an inspected model -> the entry to add (id, free port, a context that fits)
"""

from ..config import user_config_file
from ..errors import DownloadCancelled, DownloadError, InspectionError
from .capabilities import CAPABILITIES, Capability
from .catalog import TASKS, Catalog, CatalogEntry, Recommendation, load_catalog, recommend
from .downloads import DownloadProgress, default_models_dir, download_file
from .fit import MemoryEstimate, gib
from .new_entry import NewEntry, propose_entry
from .report import CONFIDENT, ModelReport
from .system import Machine, missing_cpu_features, read_machine
from .yaml_entries import add_entry, remove_entry, writable_config_path

__all__ = [
    "CAPABILITIES",
    "CONFIDENT",
    "Capability",
    "Catalog",
    "CatalogEntry",
    "DownloadCancelled",
    "DownloadError",
    "DownloadProgress",
    "InspectionError",
    "Machine",
    "MemoryEstimate",
    "ModelReport",
    "NewEntry",
    "Recommendation",
    "TASKS",
    "add_entry",
    "default_models_dir",
    "download_file",
    "gib",
    "load_catalog",
    "missing_cpu_features",
    "propose_entry",
    "read_machine",
    "recommend",
    "remove_entry",
    "user_config_file",
    "writable_config_path",
]
