"""retune: continuous fine-tuning for production LLMs (core library, no Prefect imports)."""

__version__ = "0.1.0"
