"""The other process of the cross-process tests.

  peer.py publish_kinematic N   publish N KinematicState samples once a subscriber matched
  peer.py echo_chunk            republish every ActionChunk from /heisd_test/chunk_in on
                                /heisd_test/chunk_out with sequence_id + 1000
  peer.py verify_service        serve /heisd_test/verify with samples.verify_response_for
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import rclpy  # noqa: E402
from rclpy.executors import ExternalShutdownException  # noqa: E402

import samples  # noqa: E402
from heisd_msgs.msg import ActionChunk, KinematicState  # noqa: E402
from heisd_msgs.srv import Verify  # noqa: E402
from heisd_ros.ros.qos import COMMAND  # noqa: E402


def main(mode: str, *args: str) -> int:
    rclpy.init()
    node = rclpy.create_node(f"heisd_test_peer_{mode}")
    try:
        if mode == "publish_kinematic":
            pub = node.create_publisher(KinematicState, "/heisd_test/kinematic", COMMAND)
            deadline = time.monotonic() + 20
            while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
                rclpy.spin_once(node, timeout_sec=0.05)
            for seq in range(int(args[0])):
                pub.publish(samples.kinematic_state(seq))
                rclpy.spin_once(node, timeout_sec=0.05)
            time.sleep(0.5)  # let reliable delivery finish before the writer goes away
        elif mode == "echo_chunk":
            pub = node.create_publisher(ActionChunk, "/heisd_test/chunk_out", COMMAND)

            def echo(msg: ActionChunk) -> None:
                msg.sequence_id += 1000
                pub.publish(msg)

            node.create_subscription(ActionChunk, "/heisd_test/chunk_in", echo, COMMAND)
            print("ready", flush=True)
            rclpy.spin(node)
        elif mode == "verify_service":
            node.create_service(Verify, "/heisd_test/verify",
                                lambda req, resp: samples.verify_response_for(req))
            print("ready", flush=True)
            rclpy.spin(node)
        else:
            raise SystemExit(f"unknown mode {mode}")
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
