"""How much memory a model will take and whether it fits this machine, before anything is loaded (pure).

The estimate is what llama-server itself reports after loading ("memory breakdown": model + context +
compute): the weights as they lie on disk (a 4-bit load of 16-bit HF weights takes about a quarter), an f16
KV cache for the whole context (llama-server shares one cache between its slots), and working buffers: one
micro-batch of 512 tokens through the feed-forward and attention activations, plus each slot's logits.
Measured against the default model's own log: bench/models.py (memory_estimate_error_pct).
"""

from __future__ import annotations

from dataclasses import dataclass

from .info import ModelInfo

MICRO_BATCH = 512  # llama-server's default --ubatch-size
SLOTS = 4  # llama-server's default --parallel (auto): each keeps its last logits
CONTEXT_STEP = 256
MIN_CONTEXT = 512


def gib(size: int) -> str:
    """A size people read at a glance: "3.42 GiB", or "153 MiB" below a gibibyte."""
    if size < 2**30:
        return f"{size / 2**20:.0f} MiB"
    return f"{size / 2**30:.2f} GiB"


@dataclass(frozen=True)
class MemoryEstimate:
    """What a model server will hold: weights, KV cache (None: the shape is unknown), working buffers; and the
    part of it on the GPU where layers are offloaded."""

    weights: int
    kv_cache: int | None = None
    buffers: int = 0
    gpu: int = 0  # of the total, what sits in GPU memory
    kv_per_token: int | None = None

    @property
    def total(self) -> int:
        return self.weights + (self.kv_cache or 0) + self.buffers

    @property
    def ram(self) -> int:
        return self.total - self.gpu

    def describe(self) -> str:
        if self.kv_cache is None:
            return f"{gib(self.total)} (weights; KV cache unknown)"
        parts = f"weights {gib(self.weights)} + KV cache {gib(self.kv_cache)}"
        if self.buffers:
            parts += f" + buffers {gib(self.buffers)}"
        where = f"; {gib(self.gpu)} of it on the GPU" if self.gpu else ""
        return f"{gib(self.total)} ({parts}{where})"


def estimate(info: ModelInfo, context_size: int, *, quantized_4bit: bool = False,
             gpu_layers: int | str | None = None, extra_bytes: int = 0) -> MemoryEstimate:
    """The estimate for ``info`` served with ``context_size`` tokens. ``extra_bytes``: files loaded beside it
    (an mmproj, adapters). ``gpu_layers``: layers offloaded ("all" or a number; None/"auto": none counted)."""
    weights = info.size_bytes + extra_bytes
    if quantized_4bit and info.kind == "hf":
        weights //= 4
    per_token = info.kv_bytes_per_token
    kv = per_token * context_size if per_token else None
    buffers = working_buffers(info, context_size)
    gpu = 0
    layers = info.layers or 0
    offloaded = layers if gpu_layers == "all" else gpu_layers if isinstance(gpu_layers, int) else 0
    if layers and offloaded:
        share = min(offloaded, layers) / layers
        gpu = int((weights + (kv or 0)) * share) + buffers
    return MemoryEstimate(weights, kv, buffers, gpu, per_token)


def working_buffers(info: ModelInfo, context_size: int) -> int:
    """Compute buffers of one micro-batch (feed-forward and attention activations in f32) and the slots' logits."""
    if not (info.embedding_length and info.feed_forward_length):
        return 0
    batch = min(MICRO_BATCH, context_size)
    activations = batch * 4 * (3 * info.feed_forward_length + 4 * info.embedding_length)
    logits = SLOTS * 4 * (info.vocab_size or 0)
    return activations + logits


@dataclass(frozen=True)
class Fit:
    """Whether an estimate fits the memory there is; a context size that would when it does not."""

    fits: bool
    needed: int
    available: int | None
    fitting_context: int | None = None  # None: it fits, or even the weights do not
    gpu_needed: int = 0
    gpu_available: int | None = None

    def describe(self) -> str:
        if self.available is None:
            return f"needs about {gib(self.needed)}; free memory unknown"
        head = f"needs about {gib(self.needed)} of {gib(self.available)} free"
        if self.gpu_needed and self.gpu_available is not None:
            head += f" (GPU: {gib(self.gpu_needed)} of {gib(self.gpu_available)})"
        if self.fits:
            return head
        if self.fitting_context:
            return f"{head}: does not fit; context_size {self.fitting_context} would"
        return f"{head}: does not fit, even with a small context"


def check_fit(need: MemoryEstimate, available: int | None, context_size: int,
              gpu_available: int | None = None) -> Fit:
    """Does ``need`` fit ``available`` bytes of RAM (and the GPU's, for its offloaded part)?"""
    if available is None:
        return Fit(True, need.total, None)
    gpu_ok = not need.gpu or gpu_available is None or need.gpu <= gpu_available
    fits = need.ram <= available and gpu_ok
    fitting = None if fits else fitting_context(need, available, context_size)
    return Fit(fits, need.total, available, fitting, need.gpu, gpu_available)


def fitting_context(need: MemoryEstimate, available: int, context_size: int) -> int | None:
    """The largest context (a multiple of 256, at least 512, below ``context_size``) whose KV cache still fits;
    None when the shape is unknown or not even the smallest does."""
    if not need.kv_per_token:
        return None
    room = available - (need.ram - (need.kv_cache or 0))
    if room <= 0:
        return None
    tokens = min(context_size - 1, room // need.kv_per_token) // CONTEXT_STEP * CONTEXT_STEP
    return tokens if tokens >= MIN_CONTEXT else None
