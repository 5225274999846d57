"""Close HTTP connections that never complete a request (idle, half-open, slow headers).

Why: uvicorn (which BentoML runs) arms its keep-alive timer only *after* a response, so a
client that connects and sends nothing, or half a request line, holds a connection — and a
file descriptor and a protocol object — forever (300 of 300 were still open after 45 s in
the adversarial pass). This guard gives every connection a deadline of ``timeout_s``: when it
fires and no request has started since it was armed (and none is being answered), the
connection is closed; otherwise it is armed again. A long request in progress is never cut.

It wraps uvicorn's HTTP protocol classes — httptools (what uvicorn picks when ``httptools``
is installed, a Perennial dependency) and h11 (its fallback) — in the worker process before
the server starts (`service/bento.py` installs it at import, which BentoML does before it
builds the server).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

_INSTALLED = {"timeout_s": None}


def install(timeout_s: float) -> None:
    """Wrap ``uvicorn``'s HTTP protocols once per process (idempotent; the timeout can be changed)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    _INSTALLED["timeout_s"] = timeout_s
    _guard(H11Protocol)
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # httptools not installed: uvicorn serves with h11
        return
    _guard(HttpToolsProtocol)


def _guard(protocol_class: type) -> None:
    if getattr(protocol_class, "__perennial_guard__", False):
        return
    made, lost = protocol_class.connection_made, protocol_class.connection_lost

    def connection_made(self, transport) -> None:  # noqa: ANN001
        made(self, transport)
        _arm(self)

    def connection_lost(self, exc) -> None:  # noqa: ANN001
        handle = getattr(self, "_perennial_deadline", None)
        if handle is not None:
            handle.cancel()
        lost(self, exc)

    protocol_class.connection_made = connection_made
    protocol_class.connection_lost = connection_lost
    protocol_class.__perennial_guard__ = True


def _arm(protocol) -> None:  # noqa: ANN001
    timeout = _INSTALLED["timeout_s"]
    if not timeout:
        return
    armed_cycle = protocol.cycle

    def check() -> None:
        transport = protocol.transport
        if transport is None or transport.is_closing():
            return
        cycle = protocol.cycle
        idle = cycle is armed_cycle and (cycle is None or cycle.response_complete)
        if idle:
            log.debug("closing a connection from %s that completed no request in %.0fs", protocol.client, timeout)
            transport.close()
        else:
            _arm(protocol)

    protocol._perennial_deadline = protocol.loop.call_later(timeout, check)
