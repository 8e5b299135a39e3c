"""The article's claims as experiments (``python -m llmarch lab ...``) and benchmarks
(``python -m llmarch bench ...``)."""
