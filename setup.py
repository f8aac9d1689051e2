"""heisd_ros: HeiSD hybrid speculative decoding for VLA policies, as a ROS 2 node suite.

Installs as a plain Python package (pip) or as an ament_python package (colcon).
The ROS 2 runtime itself is not a pip dependency: it comes from a ROS 2 install
or from the ros-kilted-* wheels listed in requirements/ros-wheels.txt.
"""
from glob import glob
from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "heisd_ros"
HERE = Path(__file__).resolve().parent


def _requirements(name: str) -> list[str]:
    """One requirement per line of requirements/<name>, comments dropped (single source for pip and colcon users)."""
    lines = (HERE / "requirements" / name).read_text().splitlines()
    return [line.split("#")[0].strip() for line in lines if line.split("#")[0].strip()]

# Node executables: console scripts for pip, lib/heisd_ros/<name> for ros2 run / launch.
NODES = [
    "kinematic_encoder",
    "retrieval_cache",
    "drafter",
    "verifier",
    "coordinator",
    "sim_bridge",
]

setup(
    name=PACKAGE,
    version="0.1.0",
    description=__doc__.splitlines()[0],
    packages=find_packages(include=[PACKAGE, f"{PACKAGE}.*"]),
    python_requires=">=3.10",
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
    ],
    package_data={PACKAGE: ["bundles/**/*", "ros/*.xml"]},
    include_package_data=True,
    install_requires=_requirements("python.txt"),
    extras_require={
        "sim": _requirements("sim.txt"),
        "test": ["pytest>=7", "pytest-timeout>=2", "hypothesis>=6"],
    },
    entry_points={
        "console_scripts": [f"heisd = {PACKAGE}.cli:main"]
        + [f"heisd-{n.replace('_', '-')} = {PACKAGE}.nodes.{n}:main" for n in NODES],
    },
    zip_safe=False,
)
