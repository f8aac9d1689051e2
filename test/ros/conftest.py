"""Fixtures of the ROS tests; the harness (isolation, spinning nodes, wait_for) is ros_harness.py."""
from ros_harness import ros_context, ros_node, tiny_bundle  # noqa: F401  (fixtures)
