"""The web admin UI (``qworker web``; ``pip install 'qworker[web]'``).

Imported only when asked for: the core and the worker never import Starlette, Jinja2 or
uvicorn. ``create_app(WebSettings(...))`` gives the ASGI app to serve or mount.
"""

from qworker.web.app import create_app
from qworker.web.settings import WebSettings

__all__ = ["WebSettings", "create_app"]
