"""
How big a property-based test is. The same tests run in two sizes:

- in ``make test`` and ``make check``: the sizes written in each test, with a fixed seed (``derandomize``), so a
  run is the same run every time, on every leg, and CI fails on the example a developer can reproduce; each
  test is sized to take at most 60 s on a leg;
- in ``make soak`` (``DEVREV_SOAK=1``): :data:`SOAK_FACTOR` times as many examples, from a fresh seed each run,
  hunting for the rare case. A failure there prints the ``@reproduce_failure`` line to pin it.

Mark each such test ``@pytest.mark.property`` so ``make soak`` finds it.
"""

from __future__ import annotations

import os
from typing import Any

from hypothesis import settings

SOAK = os.environ.get("DEVREV_SOAK") == "1"
#: How many times the written size a soak runs.
SOAK_FACTOR = 25


def sized(max_examples: int, **kwargs: Any) -> settings:
    """Hypothesis settings for ``max_examples`` examples in ``make test``, :data:`SOAK_FACTOR` times more in soak."""
    return settings(
        max_examples=max_examples * SOAK_FACTOR if SOAK else max_examples,
        derandomize=not SOAK,
        deadline=None,
        **kwargs,
    )
