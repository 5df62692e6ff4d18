"""Prompt texts kept as ``prompts/<name>.txt`` files beside a role's modules, and their placeholders.

Placeholders are ``{name}`` and are replaced by name only, so JSON examples in the texts need no brace escaping.
Both functions are pure: the same arguments always give byte-identical text, which keeps a dialogue's prompt prefix
stable for serving engines' caches.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

__all__ = ["read_prompt", "render"]


@cache
def read_prompt(package: str, name: str) -> str:
    """The text of ``<package>/prompts/<name>.txt`` (read once), without a trailing newline."""
    return files(package).joinpath("prompts", f"{name}.txt").read_text(encoding="utf-8").rstrip("\n")


def render(template: str, **values: object) -> str:
    """Replace each ``{name}`` given in ``values``; other braces are left alone."""
    for name, value in values.items():
        template = template.replace("{" + name + "}", str(value))
    return template
