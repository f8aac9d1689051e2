"""The hang watchdog of test/conftest.py, on a test that pytest-timeout cannot stop: a
C-level deadlock with the GIL held. The run must end by itself, exit 1, and say where."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HANGING_TEST = '''
import ctypes

def test_deadlocked_in_c():
    libc = ctypes.PyDLL(None)  # PyDLL keeps the GIL during the call
    mutex = ctypes.create_string_buffer(64)  # zeroed: PTHREAD_MUTEX_INITIALIZER (glibc)
    libc.pthread_mutex_lock(mutex)
    libc.pthread_mutex_lock(mutex)  # a normal mutex locked twice never returns
'''


def test_a_test_stuck_in_c_ends_the_run_with_its_stack(tmp_path: Path):
    shutil.copy(Path(__file__).resolve().parents[1] / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_stuck.py").write_text(HANGING_TEST)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "timeout=1", "--rootdir", str(tmp_path),
         "-c", "/dev/null", str(tmp_path / "test_stuck.py")],
        env={**os.environ, "HEISD_TEST_HANG_S": "3"}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Timeout (0:00:03)!" in proc.stderr, proc.stderr[-2000:]
    assert "test_deadlocked_in_c" in proc.stderr, proc.stderr[-2000:]
    assert "from pytest-timeout" not in proc.stdout  # pytest-timeout never got to run: only the watchdog could
