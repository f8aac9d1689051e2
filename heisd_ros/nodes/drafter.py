"""Drafter: serves action-token drafts from the bundle's small drafter model."""
from __future__ import annotations

import sys

from heisd_ros.nodes.base import OK, HeisdNode, run


class DrafterNode(HeisdNode):
    NODE_NAME = "drafter"

    def __init__(self) -> None:
        super().__init__()
        self.set_status(OK, "parameters loaded")
        self.get_logger().info("started with " + ", ".join(f"{k}={v!r}" for k, v in self.params.values().items()))


def main(args: list[str] | None = None) -> int:
    return run(DrafterNode, args)


if __name__ == "__main__":
    sys.exit(main())
