"""Session-wide safety net: a test stuck where no Python code runs.

pytest-timeout (600 s, signal method) raises in the test's own thread, which only
happens once that thread runs Python again. A test blocked inside a C call that
holds the GIL (DDS teardown, say) would hang the whole run silently until CI's own
limit. This watchdog, a C thread of faulthandler's, prints every thread's Python
stack to the real stderr and ends the run with exit status 1 once a single test
(setup, call and teardown) has run HANG_S seconds."""
from __future__ import annotations

import faulthandler
import os

import pytest

HANG_S = float(os.environ.get("HEISD_TEST_HANG_S", 900.0))  # well past the 600 s per-test timeout: only a test that timeout cannot stop
_real_stderr = None  # set by pytest_configure, before any test runs


def pytest_configure(config: pytest.Config) -> None:
    global _real_stderr
    capman = config.pluginmanager.getplugin("capturemanager")
    if capman is not None:
        capman.suspend_global_capture(in_=False)
    try:
        _real_stderr = os.fdopen(os.dup(2), "w")  # fd 2 before pytest's capture redirects it
    finally:
        if capman is not None:
            capman.resume_global_capture()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    faulthandler.dump_traceback_later(HANG_S, exit=True, file=_real_stderr)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()
