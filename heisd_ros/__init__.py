"""heisd_ros: HeiSD hybrid speculative decoding for Vision-Language-Action policies.

Layers: ``heisd_ros.core`` (ROS-free engine), ``heisd_ros.sim`` and ``heisd_ros.data``
(simulation and rosbag2 demonstrations), ``heisd_ros.nodes`` (thin rclpy nodes),
``heisd_ros.cli`` (the ``heisd`` command).
"""

__version__ = "0.1.0"
