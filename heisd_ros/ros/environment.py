"""Environment of a heisd_ros process graph: DDS isolation and discovery tuning.

Used by ``heisd bringup``, the demo and the tests so that every process of one
graph shares a domain, discovers only on this host, and uses the Fast DDS
profile shipped with the package.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

FASTDDS_PROFILE = Path(__file__).with_name("fastdds_profile.xml")  # any discovery range: fast discovery only
FASTDDS_LOCALHOST_PROFILE = Path(__file__).with_name("fastdds_localhost.xml")  # loopback UDP, no shared memory
_OWN_PROFILES = {str(FASTDDS_PROFILE), str(FASTDDS_LOCALHOST_PROFILE)}


def graph_environment(domain_id: int | None = None, base: Mapping[str, str] | None = None,
                      localhost_only: bool = True) -> dict[str, str]:
    """A copy of ``base`` (default: os.environ) set up for one node graph.

    Localhost-only (the default) uses the package's loopback profile: UDP on 127.0.0.1,
    no shared-memory transport, whose segments a killed process leaves behind (see
    fastdds_localhost.xml). A Fast DDS profile of the user's own in
    FASTDDS_DEFAULT_PROFILES_FILE is kept, and then rmw's LOCALHOST range confines it.
    """
    env = dict(os.environ if base is None else base)
    if domain_id is not None:
        if not 0 <= domain_id <= 101:
            raise ValueError(f"ROS_DOMAIN_ID must be in 0..101, got {domain_id}")
        env["ROS_DOMAIN_ID"] = str(domain_id)
    ours = env.get("FASTDDS_DEFAULT_PROFILES_FILE") in _OWN_PROFILES | {None, ""}  # not a profile of the user's
    if ours:
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = str(FASTDDS_LOCALHOST_PROFILE if localhost_only else FASTDDS_PROFILE)
    if localhost_only:
        # rmw_fastrtps's LOCALHOST range adds shared memory back: with our loopback profile, the profile decides
        env["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "SYSTEM_DEFAULT" if ours else "LOCALHOST"
    env.setdefault("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env
