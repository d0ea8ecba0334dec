"""The daemon's HTTP surface: the application and its token rules (``app``), the server the
daemon runs on ``http_bind`` (``server``), and the web dashboard (``dashboard``, ``web/``).

``app`` depends on nothing of the daemon but callables, so it is tested on its own; ``server``
is where those callables are bound to the running daemon. Import the modules.
"""

__all__: list[str] = []
