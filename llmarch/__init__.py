"""llmarch: the Transformer families, explained and implemented.

>>> from llmarch import causal_mask
>>> causal_mask(2).tolist()
[[True, False], [True, True]]
"""

from .interop import from_pretrained, save_pretrained
from .models import *  # noqa: F401,F403
from .models import __all__ as _models_all
from .nn import *  # noqa: F401,F403
from .nn import __all__ as _nn_all

__version__ = "0.1.0"
__all__ = list(_nn_all) + list(_models_all) + ["from_pretrained", "save_pretrained"]
