"""Retrieval cache: serves top-K cached action sequences from the bundle's hnswlib datastore."""
from __future__ import annotations

import sys

from heisd_ros.nodes.base import OK, HeisdNode, run


class RetrievalCacheNode(HeisdNode):
    NODE_NAME = "retrieval_cache"

    def __init__(self) -> None:
        super().__init__()
        self.set_status(OK, "parameters loaded")
        self.get_logger().info("started with " + ", ".join(f"{k}={v!r}" for k, v in self.params.values().items()))


def main(args: list[str] | None = None) -> int:
    return run(RetrievalCacheNode, args)


if __name__ == "__main__":
    sys.exit(main())
