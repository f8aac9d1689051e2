"""graph_environment: which DDS profile and discovery range a node graph gets."""
from __future__ import annotations

import pytest

from heisd_ros.ros.environment import FASTDDS_LOCALHOST_PROFILE, FASTDDS_PROFILE, graph_environment


def test_localhost_graph_gets_the_loopback_profile_and_lets_it_decide():
    env = graph_environment(7, base={"ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"})
    assert env["ROS_DOMAIN_ID"] == "7"
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(FASTDDS_LOCALHOST_PROFILE)
    # rmw_fastrtps's LOCALHOST range would put the shared-memory transport back
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SYSTEM_DEFAULT"
    assert "<useBuiltinTransports>false</useBuiltinTransports>" in FASTDDS_LOCALHOST_PROFILE.read_text()
    assert 'interface name="127.0.0.1"' in FASTDDS_LOCALHOST_PROFILE.read_text()
    # idempotent: a second call on its own output (as the demo does on os.environ) changes nothing
    assert graph_environment(7, base=env) == env


def test_a_users_own_profile_is_kept_and_rmw_confines_it_to_localhost():
    env = graph_environment(base={"FASTDDS_DEFAULT_PROFILES_FILE": "/etc/robot/dds.xml"})
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == "/etc/robot/dds.xml"
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "LOCALHOST"


def test_a_graph_across_machines_keeps_the_builtin_transports():
    env = graph_environment(base={"ROS_AUTOMATIC_DISCOVERY_RANGE": "SUBNET"}, localhost_only=False)
    assert env["ROS_AUTOMATIC_DISCOVERY_RANGE"] == "SUBNET"
    assert env["FASTDDS_DEFAULT_PROFILES_FILE"] == str(FASTDDS_PROFILE)
    assert "useBuiltinTransports" not in FASTDDS_PROFILE.read_text()


def test_domain_id_out_of_range_is_refused():
    with pytest.raises(ValueError, match="0..101"):
        graph_environment(150, base={})
