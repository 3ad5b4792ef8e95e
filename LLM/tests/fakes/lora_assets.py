"""LoRA adapters for the default model (SmolLM2-135M), written here with random non-zero weights.

Nothing is trained or downloaded: a GGUF LoRA is written tensor by tensor with the `gguf` package, and a
PEFT directory (adapter_config.json + adapter_model.safetensors) with numpy and safetensors. PEFT itself
initialises B to zero, which would make an adapter a no-op; these change the model's answers visibly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

# SmolLM2-135M: 30 layers, hidden 576, 9 query heads and 3 key/value heads of 64.
LAYERS, HIDDEN, KV_OUT = 30, 576, 192
RANK, ALPHA, STD = 8, 16.0, 0.08


def _pairs(seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(A, B) per adapted projection, keyed by the HF module name; numpy shapes (r, n_in) and (n_out, r)."""
    rng = np.random.default_rng(seed)
    pairs = {}
    for layer in range(LAYERS):
        for proj, n_out in (("q_proj", HIDDEN), ("v_proj", KV_OUT)):
            a = (rng.standard_normal((RANK, HIDDEN)) * STD).astype(np.float32)
            b = (rng.standard_normal((n_out, RANK)) * STD).astype(np.float32)
            pairs[f"model.layers.{layer}.self_attn.{proj}"] = (a, b)
    return pairs


def write_gguf_lora(path: Path, seed: int) -> Path:
    """A GGUF LoRA for the default model: ``blk.N.attn_q/attn_v.weight.lora_a/b``."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_type("adapter")
    writer.add_string("adapter.type", "lora")
    writer.add_float32("adapter.lora.alpha", ALPHA)
    for module, (a, b) in _pairs(seed).items():
        layer = module.split(".")[2]
        tensor = f"blk.{layer}.attn_{'q' if module.endswith('q_proj') else 'v'}.weight"
        writer.add_tensor(f"{tensor}.lora_a", a)
        writer.add_tensor(f"{tensor}.lora_b", b)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def write_peft_lora(directory: Path, seed: int) -> Path:
    """A PEFT LoRA directory for the default model (what training with PEFT would leave behind)."""
    from safetensors.numpy import save_file

    directory.mkdir(parents=True, exist_ok=True)
    tensors = {}
    for module, (a, b) in _pairs(seed).items():
        tensors[f"base_model.model.{module}.lora_A.weight"] = a
        tensors[f"base_model.model.{module}.lora_B.weight"] = b
    save_file(tensors, str(directory / "adapter_model.safetensors"))
    config = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": RANK, "lora_alpha": ALPHA, "bias": "none",
              "target_modules": ["q_proj", "v_proj"], "base_model_name_or_path": "HuggingFaceTB/SmolLM2-135M-Instruct"}
    (directory / "adapter_config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory
