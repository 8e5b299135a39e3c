"""Corpora shipped with llmarch: cleaned UTF-8 texts and how they were made (see ``README.md`` here).

Load them with :func:`llmarch.training.corpus.load_corpus`; ``python -m llmarch.data.prepare`` rebuilds
them from the Debian packages they came from.
"""
