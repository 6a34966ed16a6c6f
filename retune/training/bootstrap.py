"""The embedded default base model: a tokenizer and a small Llama trained here on local text, no hub needed.

Chat format (the tokenizer's Jinja `chat_template`)::

    <|bos|><|system|>\\n{content}<|end|>\\n<|user|>\\n{content}<|end|>\\n<|assistant|>\\n{content}<|end|>\\n

`add_generation_prompt=True` appends `<|assistant|>\\n`; `<|end|>` is the eos token, so `generate()` stops at the
end of the assistant's turn. Roles other than system/user/assistant are rejected by the template.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from retune.config import BootstrapConfig
from retune.errors import TrainingError

PAD, BOS, EOS = "<|pad|>", "<|bos|>", "<|end|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
SPECIAL_TOKENS = [PAD, BOS, EOS, *ROLE_TOKENS]

CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role: ' + message['role']) }}"
    "{% endif %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}<|end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)

# A hub id is `name` or `org/name`; anything absolute, starting with . or ~, deeper, or under the workdir's
# models/ folder is a local path (so the default `models/base` is never mistaken for a hub repository).
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def resolve_base_model(base_model: str, workdir: Path) -> tuple[str, bool]:
    """Where to load the base model from, and whether it must be bootstrapped first.

    Returns (path-or-hub-id, needs_bootstrap). A value that exists locally (absolute, or relative to the
    workdir) is that path; a path-like value that does not exist yet needs bootstrap; anything else is a hub id.
    """
    raw = Path(base_model).expanduser()
    local = raw if raw.is_absolute() else Path(workdir) / raw
    if local.exists():
        return str(local), False
    path_like = (
        raw.is_absolute()
        or base_model.startswith((".", "~"))
        or base_model.split("/", 1)[0] == "models"
        or not _HUB_ID.match(base_model)
    )
    if path_like:
        return str(local), True
    return base_model, False


def train_tokenizer(texts: list[str], vocab_size: int):
    """A byte-level BPE tokenizer trained on `texts`, wrapped as a PreTrainedTokenizerFast with the chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no unknown tokens
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        additional_special_tokens=ROLE_TOKENS,
        model_input_names=["input_ids", "attention_mask"],  # no token_type_ids: generate() rejects them
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def bootstrap_base_model(
    out_dir: Path,
    texts: list[str],
    cfg: BootstrapConfig,
    on_progress: Callable[[int, int, float], None] | None = None,
) -> Path:
    """Train a tokenizer and a small Llama on `texts` (short full pre-training) and save both to `out_dir`.

    `on_progress(step, total_steps, loss)` is called after each pre-training step. Deterministic for a given
    `cfg.seed` and texts. The directory appears whole or not at all (written aside, then renamed).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise TrainingError("cannot bootstrap the base model: no text to train it on")
    out_dir = Path(out_dir)
    torch.manual_seed(cfg.seed)

    tokenizer = train_tokenizer(texts, cfg.vocab_size)
    config = LlamaConfig(
        vocab_size=len(tokenizer),  # BPE on little text may learn fewer merges than asked
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_heads,
        max_position_embeddings=cfg.max_position_embeddings,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)

    # One token stream (texts separated by eos), cut into random windows: plain language modelling.
    stream: list[int] = []
    for text in texts:
        stream.extend(tokenizer(text, add_special_tokens=False)["input_ids"])
        stream.append(tokenizer.eos_token_id)
    data = torch.tensor(stream, dtype=torch.long)
    seq_len = max(8, min(cfg.max_position_embeddings, 128, len(stream) - 1))
    batch_size = 8
    generator = torch.Generator().manual_seed(cfg.seed)

    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.learning_rate, weight_decay=0.01)
    warmup = max(1, cfg.pretrain_steps // 10)

    def lr_factor(step: int) -> float:  # linear warmup, cosine decay to 10%
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, cfg.pretrain_steps - warmup)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    model.train()
    for step in range(cfg.pretrain_steps):
        if len(data) > seq_len + 1:
            starts = torch.randint(0, len(data) - seq_len - 1, (batch_size,), generator=generator)
            batch = torch.stack([data[s : s + seq_len] for s in starts.tolist()])
        else:
            batch = data[:seq_len].unsqueeze(0)
        loss = model(input_ids=batch, labels=batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if on_progress is not None:
            on_progress(step + 1, cfg.pretrain_steps, loss.item())
    model.eval()

    staging = out_dir.with_name(out_dir.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / "retune_bootstrap.json").write_text(
        json.dumps({"bootstrap": cfg.model_dump(mode="json"), "texts": len(texts), "tokens": len(stream)}, indent=2)
    )
    if out_dir.exists():
        shutil.rmtree(out_dir)
    staging.rename(out_dir)
    return out_dir
