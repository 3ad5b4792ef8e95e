"""A tiny random LLaVA (CLIP vision tower + Llama) with its processor, built from configs: no download."""

from __future__ import annotations

from pathlib import Path

from LLM.tests.fakes.tiny_tokenizer import train_tokenizer

IMAGE_TOKEN = "<image>"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", IMAGE_TOKEN]
# ChatML whose user turns may be lists of parts: an image part becomes the processor's <image> placeholder,
# which the processor then repeats once per patch the vision tower yields.
CHAT_TEMPLATE = (
    "{% if tools %}<|im_start|>system\nTools: {{ tools | tojson }}<|im_end|>\n{% endif %}"
    "{% for m in messages %}<|im_start|>{{ m.role }}\n"
    "{% if m.content is string %}{{ m.content }}{% else %}{% for part in m.content %}"
    "{% if part.type == 'image' %}<image>{% elif part.type == 'text' %}{{ part.text }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SENTENCES = [
    "the quick brown fox jumps over the lazy dog",
    "hello world, this is a tiny language model for tests",
    "what is in this picture? a red square on a blue field",
] * 20
IMAGE_SIZE = 32
PATCH_SIZE = 8  # (32 / 8)^2 = 16 image tokens per picture


def build_tiny_vlm(model_dir: Path) -> None:
    """Save a random LlavaForConditionalGeneration and its LlavaProcessor (tokenizer + CLIPImageProcessor) in
    ``model_dir``. The tokenizer is trained here, as ``build_tiny_model``'s is, with ``<image>`` added."""
    import torch
    import transformers

    tokenizer = train_tokenizer(SPECIAL_TOKENS, SENTENCES)
    # The Pillow backend: torchvision (the default backend's) is not a dependency.
    image_processor_class = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    image_processor = image_processor_class(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    processor = transformers.LlavaProcessor(
        image_processor=image_processor, tokenizer=tokenizer, patch_size=PATCH_SIZE,
        # As llava-hf's own: CLIP adds a CLS token, which the "default" strategy drops again (16 placeholders).
        num_additional_image_tokens=1, vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE, image_token=IMAGE_TOKEN,
    )
    processor.save_pretrained(model_dir)

    torch.manual_seed(0)
    vision = transformers.CLIPVisionConfig(
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, hidden_size=32, intermediate_size=64,
        num_hidden_layers=1, num_attention_heads=2, projection_dim=32,
    )
    text = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=2, intermediate_size=64, max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, bos_token_id=None,
    )
    config = transformers.LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=processor.image_token_id,
        # The same strategy as the processor's; CLIP has one layer, so its features are the last hidden state.
        vision_feature_select_strategy="default", vision_feature_layer=-1,
    )
    model = transformers.LlavaForConditionalGeneration(config)
    with torch.no_grad():
        # As in build_tiny_model: special tokens (the image placeholder too) get logit 0 while the others are
        # random, so greedy answers are real words and run to max_tokens deterministically.
        for token in SPECIAL_TOKENS:
            model.lm_head.weight[tokenizer.convert_tokens_to_ids(token)] = 0.0
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(model_dir)
