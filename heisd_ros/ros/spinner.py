"""Spin an executor on a background thread (for tools and tests that own an rclpy node
next to other work), and stop it cleanly."""
from __future__ import annotations

import threading

from rclpy.executors import Executor


class BackgroundSpinner:
    def __init__(self, executor: Executor, period_s: float = 0.05) -> None:
        self.executor = executor
        self._period = period_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, name="heisd-spin", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=self._period)

    def stop(self, timeout_s: float = 10.0) -> bool:
        """Stop spinning; False when the thread or the executor's work did not finish in time
        (the thread is a daemon: it cannot keep the process alive)."""
        self._stop.set()
        self._thread.join(timeout=timeout_s)
        return self.executor.shutdown(timeout_sec=timeout_s) and not self._thread.is_alive()
