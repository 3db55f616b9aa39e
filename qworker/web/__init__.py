"""The web admin UI (``qworker web``; ``pip install 'qworker-redis[web]'``).

Imported only when asked for: the core and the worker never import Starlette, Jinja2 or
uvicorn. ``create_app(WebSettings(...))`` gives the ASGI app to serve or mount. ``create_app``
is loaded on first use, so the command line can read the settings (and say how to install the
extra) on a machine without it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qworker.web.settings import WebSettings

if TYPE_CHECKING:
    from qworker.web.app import create_app

__all__ = ["WebSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from qworker.web.app import create_app

        return create_app
    raise AttributeError(f"module 'qworker.web' has no attribute {name!r}")
