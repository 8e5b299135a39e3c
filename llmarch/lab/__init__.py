"""The article's claims as experiments, and benchmarks (``python -m llmarch bench ...``)."""
