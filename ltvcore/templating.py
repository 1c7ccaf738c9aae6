"""The one Jinja2 set-up of every HTML page: autoescaped, strict, whitespace as written."""

from __future__ import annotations

import jinja2

__all__ = ["environment"]


def environment(package: str) -> jinja2.Environment:
    """An environment over ``package``'s ``templates/``, built once per process by its caller.

    Templates are parsed on first use and cached (a Lambda container renders many pages).
    StrictUndefined turns a value a template expects but was not given into an error, never a
    silently empty spot on a page.
    """
    return jinja2.Environment(
        loader=jinja2.PackageLoader(package, "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
