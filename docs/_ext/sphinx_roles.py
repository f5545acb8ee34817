"""Griffe extension for the API reference: show Sphinx cross-reference roles as code.

The docstrings are written for Sphinx (``:class:`~pkg.Name```); mkdocstrings' sphinx style parses their
``:param:`` fields but leaves inline roles as raw text. This turns each role into inline code of the name
it points at (the last dotted part with ``~``, as Sphinx shows it).
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|exc|data|obj|const):`(~?)([^`]+)`")


def _show(match: re.Match[str]) -> str:
    target = match.group(2)
    return f"`{target.rsplit('.', 1)[-1] if match.group(1) else target}`"


class SphinxRoles(griffe.Extension):
    """Rewrites the roles of every docstring as it is loaded."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = ROLE.sub(_show, obj.docstring.value)
