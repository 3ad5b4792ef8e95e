"""The tokenizer of the tests' tiny transformers models, trained in the test (no download)."""

from __future__ import annotations


def train_tokenizer(special_tokens: list[str], sentences: list[str]) -> object:
    """A byte-level BPE tokenizer of 320 tokens trained on ``sentences`` (ChatML's end of turn as its eos), as a
    transformers fast tokenizer: the tiny models of the tests speak through it."""
    import transformers
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320, special_tokens=special_tokens, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(sentences, trainer)
    return transformers.PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>")
