"""Demonstrations as rosbag2: writing episodes (bag_writer), collecting them (collect), reading
any bag into time-aligned training frames (reader). The heisd_msgs types come from their .msg
files (typestore); no ROS runtime is needed.
"""
