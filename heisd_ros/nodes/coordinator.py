"""Coordinator: hybrid policy per inference, action queue, fixed-rate publication of verified actions."""
from __future__ import annotations

import sys

from heisd_ros.nodes.base import OK, HeisdNode, run


class CoordinatorNode(HeisdNode):
    NODE_NAME = "coordinator"

    def __init__(self) -> None:
        super().__init__()
        self.set_status(OK, "parameters loaded")
        self.get_logger().info("started with " + ", ".join(f"{k}={v!r}" for k, v in self.params.values().items()))


def main(args: list[str] | None = None) -> int:
    return run(CoordinatorNode, args)


if __name__ == "__main__":
    sys.exit(main())
