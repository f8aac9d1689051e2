"""ros2 launch heisd_ros heisd.launch.py [bundle:=...] [rate:=20.0] [use_sim_time:=true] [sim:=true] [task:=lift]

Starts the same node executables with the same parameter file as
``heisd bringup``: the YAML is loaded, overridden and validated by the shared
``heisd_ros.ros.config`` code, so a bad value is reported before any node starts.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.event_handlers import OnShutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from heisd_ros.ros.config import apply_overrides, default_config_path, load_config, write_params_file
from heisd_ros.ros.graph import DEFAULT_NODES
from heisd_ros.ros.param_specs import NODE_PARAMS

ARGUMENTS = {
    "config": (str(default_config_path()), "Parameter file (ROS 2 YAML) for every node"),
    "bundle": ("", "Model bundle directory or shipped bundle name ('' = keep the file's value)"),
    "rate": ("", "Control rate of the coordinator in Hz, 1..100 ('' = keep the file's value)"),
    "use_sim_time": ("false", "Follow /clock (bag replay or simulation)"),
    "sim": ("false", "Also start the simulation bridge (a robosuite robot)"),
    "task": ("", "Simulation task for the bridge: lift, sort, nut or humanoid_lift ('' = keep the file's value)"),
}


def _nodes(context, *args, **kwargs):
    value = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    nodes = list(DEFAULT_NODES) + (["sim_bridge"] if value["sim"].lower() == "true" else [])
    overrides = []
    if value["bundle"]:
        overrides += [f"{n}.bundle:={value['bundle']}" for n in nodes if any(s.name == "bundle" for s in NODE_PARAMS[n])]
    if value["rate"]:
        try:
            rate = float(value["rate"])
        except ValueError:
            raise ValueError(f"launch argument rate:={value['rate']!r} must be a number of Hz") from None
        overrides.append(f"coordinator.control_rate_hz:={rate}")
        if "sim_bridge" in nodes:
            overrides.append(f"sim_bridge.control_rate_hz:={rate}")
    if value["task"]:
        overrides.append(f"sim_bridge.task:={value['task']}")
    config = apply_overrides(load_config(value["config"]), overrides)
    sim_time = value["use_sim_time"].lower() == "true"
    folder = Path(tempfile.mkdtemp(prefix="heisd-launch-"))
    params_file = write_params_file({n: {**config.get(n, {}), "use_sim_time": sim_time} for n in nodes}, folder / "params.yaml")
    cleanup = RegisterEventHandler(OnShutdown(on_shutdown=lambda *_: shutil.rmtree(folder, ignore_errors=True)))
    # a node that dies stops the whole graph, as `heisd bringup` does
    return [cleanup] + [
        Node(package="heisd_ros", executable=f"heisd-{n.replace('_', '-')}", name=n, output="screen",
             parameters=[str(params_file)], on_exit=Shutdown(reason=f"{n} exited"))
        for n in nodes
    ]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription(
        [DeclareLaunchArgument(name, default_value=default, description=doc) for name, (default, doc) in ARGUMENTS.items()]
        + [OpaqueFunction(function=_nodes)]
    )
