"""Typed reads of a Hugging Face ``config.json``.

A converter reads each field through ``ConfigJson`` rather than ``dict.get``, so that a field of
the wrong type (``"n_layer": "12"``, ``"tie_word_embeddings": "yes"``) is refused with a message
naming the field, the expected type and the value found -- instead of surfacing later as an
error about one of llmarch's own names, or not at all.
"""

from __future__ import annotations

__all__ = ["ConfigJson"]

_REQUIRED = object()


class ConfigJson:
    """A ``config.json`` dict with typed getters.

    Args:
        data: the parsed JSON object.
        name: how messages call the file (default ``"config.json"``).

    Raises:
        TypeError: if ``data`` is not a dict.

    >>> cfg = ConfigJson({"n_layer": "2", "n_embd": 64, "layer_norm_epsilon": 1})
    >>> cfg.int("n_embd"), cfg.float("layer_norm_epsilon"), cfg.bool("tie_word_embeddings", True)
    (64, 1.0, True)
    >>> cfg.int("n_layer")
    Traceback (most recent call last):
    ...
    TypeError: config.json n_layer must be an int, got str ('2')
    >>> cfg.int("vocab_size")
    Traceback (most recent call last):
    ...
    ValueError: config.json must set vocab_size (an int); it is missing
    """

    def __init__(self, data: dict, name: str = "config.json") -> None:
        if not isinstance(data, dict):
            raise TypeError(f"{name} must hold a JSON object, got {type(data).__name__}")
        self.data, self.name = data, name

    def _get(self, key: str, default, kind: str):
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            raise ValueError(f"{self.name} must set {key} ({kind}); it is missing")
        return default

    def _wrong(self, key: str, kind: str, value) -> TypeError:
        return TypeError(f"{self.name} {key} must be {kind}, got {type(value).__name__} ({value!r})")

    def int(self, key: str, default=_REQUIRED, *, optional: bool = False):
        """``data[key]`` as an int (``None`` too when ``optional``); ``default`` when absent."""
        value = self._get(key, default, "an int")
        if value is None and (optional or default is None):
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, "an int" + (" or null" if optional else ""), value)
        return value

    def float(self, key: str, default=_REQUIRED):
        """``data[key]`` as a float (JSON ints accepted); ``default`` when absent."""
        value = self._get(key, default, "a number")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._wrong(key, "a number", value)
        return float(value)

    def bool(self, key: str, default=_REQUIRED):
        """``data[key]``, which must be ``true`` or ``false``; ``default`` when absent."""
        value = self._get(key, default, "true or false")
        if not isinstance(value, bool):
            raise self._wrong(key, "true or false", value)
        return value

    def str(self, key: str, default=_REQUIRED, *, choices=None):
        """``data[key]`` as a string, one of ``choices`` when given; ``default`` when absent.

        Raises:
            ValueError: for a string not in ``choices`` (all of them are listed).
        """
        value = self._get(key, default, "a string")
        if not isinstance(value, str):
            raise self._wrong(key, "a string", value)
        if choices is not None and value not in choices:
            expected = repr(choices[0]) if len(choices) == 1 else f"one of {', '.join(map(repr, choices))}"
            raise ValueError(f"{self.name} {key} must be {expected}, got {value!r}")
        return value

    def token_id(self, key: str):
        """A special-token id: an int, ``null``/absent (``None``), or a one-element list.

        Raises:
            ValueError: for a list of several ids (llmarch's ``generate`` stops on one EOS id).
        """
        value = self.data.get(key)
        if isinstance(value, list):
            if len(value) != 1:
                raise ValueError(f"{self.name} {key} must be one id (llmarch stops generation on a single id), got "
                                 f"the list {value!r}; keep one of them in config.json (and stop on the others "
                                 f"in your own code)")
            value = value[0]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise self._wrong(key, "an int or null", value)
        return value
