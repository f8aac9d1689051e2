"""Simulation bridge: runs a robosuite task as a robot (joint states, cameras, EE pose, /clock, success)."""
from __future__ import annotations

import sys

from heisd_ros.nodes.base import OK, HeisdNode, run


class SimBridgeNode(HeisdNode):
    NODE_NAME = "sim_bridge"

    def __init__(self) -> None:
        super().__init__()
        self.set_status(OK, "parameters loaded")
        self.get_logger().info("started with " + ", ".join(f"{k}={v!r}" for k, v in self.params.values().items()))


def main(args: list[str] | None = None) -> int:
    return run(SimBridgeNode, args)


if __name__ == "__main__":
    sys.exit(main())
