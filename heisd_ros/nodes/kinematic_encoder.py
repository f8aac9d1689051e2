"""Kinematic encoder: joint states, end-effector poses and cameras in, heisd_msgs/KinematicState (R, D, fused metric M) out."""
from __future__ import annotations

import sys

from heisd_ros.nodes.base import OK, HeisdNode, run


class KinematicEncoderNode(HeisdNode):
    NODE_NAME = "kinematic_encoder"

    def __init__(self) -> None:
        super().__init__()
        self.set_status(OK, "parameters loaded")
        self.get_logger().info("started with " + ", ".join(f"{k}={v!r}" for k, v in self.params.values().items()))


def main(args: list[str] | None = None) -> int:
    return run(KinematicEncoderNode, args)


if __name__ == "__main__":
    sys.exit(main())
