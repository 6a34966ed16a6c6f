"""Training core: the embedded base model, the training set, and the DeepSpeed LoRA fine-tune (as a subprocess)."""
