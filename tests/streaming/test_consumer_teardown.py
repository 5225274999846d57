"""kafka-python 3 can log a socket torn down under an in-flight request at ERROR while a
consumer closes; during our close that is not an operator's problem (kept at DEBUG), and
outside it every error still shows."""

from __future__ import annotations

import logging

from streaming.consumer import _quiet_client_teardown


def test_client_errors_during_close_are_debug_and_outside_it_errors(caplog):
    transport = logging.getLogger("kafka.net.transport")
    with caplog.at_level(logging.DEBUG):
        with _quiet_client_teardown():
            transport.error("Error receiving network data closing socket")
        transport.error("a real error")
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == ["a real error"]
    assert any("during close, kafka.net.transport" in r.getMessage() and r.levelno == logging.DEBUG
               for r in caplog.records)
