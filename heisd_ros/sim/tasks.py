"""The task families this project simulates, each a robosuite environment plus an instruction.

A task names what it needs from robosuite (environment, robot, extra keyword
arguments), the language instruction the VLA receives, and the bodies and sites
whose poses are privileged state for the scripted expert.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass(frozen=True)
class TaskSpec:
    """Static description of one task."""

    name: str
    env_name: str
    robot: str
    instruction: str
    max_steps: int
    bodies: Mapping[str, str] = field(default_factory=dict)
    sites: Mapping[str, str] = field(default_factory=dict)
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    cameras: tuple[str, ...] = ("agentview", "robot0_eye_in_hand")

    @property
    def is_humanoid(self) -> bool:
        return self.robot.startswith("GR1")


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="lift",
            env_name="Lift",
            robot="Panda",
            instruction="lift the cube",
            max_steps=200,
            bodies={"cube": "cube_main"},
        ),
        TaskSpec(
            name="sort",
            env_name="PickPlaceSubset",
            robot="Panda",
            instruction="put the bread and the can into their bins",
            max_steps=700,
            bodies={
                "bread": "Bread_main",
                "can": "Can_main",
                "bread_bin": "VisualBread_main",
                "can_bin": "VisualCan_main",
            },
            env_kwargs={"active_objects": ("Bread", "Can")},
        ),
        TaskSpec(
            name="nut",
            env_name="NutAssemblySquare",
            robot="Panda",
            instruction="put the square nut on the square peg",
            max_steps=400,
            bodies={"square_nut": "SquareNut_main", "square_peg": "peg1"},
            sites={"square_nut_handle": "SquareNut_handle_site"},
        ),
        TaskSpec(
            name="humanoid_lift",
            env_name="HumanoidLift",
            robot="GR1ArmsOnly",
            instruction="lift the cube",
            max_steps=700,
            bodies={"cube": "cube_main"},
            cameras=("frontview", "robot0_robotview"),
        ),
    )
}


def get_task(name: str) -> TaskSpec:
    """The task called ``name``; ValueError listing the known ones otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}") from None
