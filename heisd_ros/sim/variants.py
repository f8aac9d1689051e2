"""Variants of robosuite environments that this project's tasks need.

Defining a class registers it with robosuite under its class name, so
``robosuite.make("PickPlaceSubset", ...)`` works once this module is imported.

- PickPlaceSubset: robosuite's PickPlace uses all four grocery objects (milk,
  bread, cereal, can) or one. Sorting a subset keeps the multi-object structure
  (each object into its own bin, success only when all are sorted) while a
  scripted expert can solve it reliably.
- HumanoidLift: robosuite's Lift puts a GR1 so far from its 0.8 m table that the
  cube is out of the arms' reach (shoulder to cube 0.78 m, arm 0.43 m), and its
  4 cm cube is small for the GR1's hand. A shorter, higher table under the right
  hand and a 6 cm cube make it a task a hand can do.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from robosuite.environments.manipulation.lift import Lift
from robosuite.environments.manipulation.manipulation_env import ManipulationEnv
from robosuite.models.arenas import TableArena
from robosuite.models.objects import BoxObject
from robosuite.models.tasks import ManipulationTask
from robosuite.environments.manipulation.pick_place import PickPlace
from robosuite.utils.placement_samplers import UniformRandomSampler

ALL_OBJECTS: tuple[str, ...] = ("Milk", "Bread", "Cereal", "Can")


class PickPlaceSubset(PickPlace):
    """PickPlace whose unused objects are moved out of the scene and ignored for success."""

    def __init__(self, active_objects: Sequence[str] = ("Bread", "Can"), wall_margin: float = 0.09, **kwargs) -> None:
        unknown = [o for o in active_objects if o not in ALL_OBJECTS]
        if unknown or not active_objects:
            raise ValueError(f"active_objects must be a non-empty subset of {ALL_OBJECTS}, got {list(active_objects)}")
        if "single_object_mode" in kwargs or "object_type" in kwargs:
            raise ValueError("PickPlaceSubset chooses its objects with active_objects only")
        self.active_objects = tuple(active_objects)
        self.wall_margin = float(wall_margin)
        super().__init__(single_object_mode=0, **kwargs)

    def _get_placement_initializer(self) -> None:
        """Spawn objects at least ``wall_margin`` m from the bin walls, where fingers can reach round them."""
        super()._get_placement_initializer()
        sampler = self.placement_initializer.samplers["CollisionObjectSampler"]
        half_x = self.table_full_size[0] / 2 - self.wall_margin
        half_y = self.table_full_size[1] / 2 - self.wall_margin
        sampler.x_range = [-half_x, half_x]
        sampler.y_range = [-half_y, half_y]

    def _reset_internal(self) -> None:
        super()._reset_internal()
        self.clear_objects([o for o in ALL_OBJECTS if o not in self.active_objects])

    def _check_success(self) -> bool:
        super()._check_success()  # fills objects_in_bins for every object
        active = [i for i, obj in enumerate(self.objects) if obj.name in self.active_objects]
        return bool(np.all(self.objects_in_bins[active]))


class HumanoidLift(Lift):
    """Lift for a GR1 with a fixed lower body: a reachable table and a cube sized for its hand.

    robosuite's Lift builds a 4 cm cube, too small for the GR1's Inspire hand to wrap,
    at a pose out of reach; this variant builds its own scene (same observables and
    reward code) with a ``cube_half_size`` cube, and succeeds once the cube is lifted
    ``lift_height`` m off the table.
    """

    def __init__(self, table_offset: Sequence[float] = (0.0, -0.16, 1.0),
                 table_full_size: Sequence[float] = (0.3, 0.6, 0.05), cube_half_size: float = 0.03,
                 lift_height: float = 0.03, **kwargs) -> None:
        self._humanoid_table_offset = np.asarray(table_offset, dtype=np.float64)
        if self._humanoid_table_offset.shape != (3,):
            raise ValueError(f"table_offset must be (x, y, z), got {table_offset}")
        if not 0.01 <= cube_half_size <= 0.06:
            raise ValueError(f"cube_half_size must be in [0.01, 0.06] m, got {cube_half_size}")
        self.cube_half_size = float(cube_half_size)
        self.lift_height = float(lift_height)
        super().__init__(table_full_size=tuple(table_full_size), **kwargs)

    def _load_model(self) -> None:
        ManipulationEnv._load_model(self)  # robots only: the scene below replaces Lift's
        self.table_offset = self._humanoid_table_offset
        robot = self.robots[0].robot_model
        robot.set_base_xpos(robot.base_xpos_offset["table"](self.table_full_size[0]))
        arena = TableArena(table_full_size=self.table_full_size, table_friction=self.table_friction,
                           table_offset=self.table_offset)
        arena.set_origin([0, 0, 0])
        self.cube = BoxObject(name="cube", size=[self.cube_half_size] * 3, rgba=[1, 0, 0, 1], density=200.0,
                              rng=self.rng)
        self.placement_initializer = UniformRandomSampler(
            name="ObjectSampler",
            mujoco_objects=self.cube,
            x_range=[-0.03, 0.03],
            y_range=[-0.03, 0.03],
            rotation=(-np.pi / 36, np.pi / 36),  # +-5 degrees: a palm meets a face, not an edge
            rotation_axis="z",
            ensure_object_boundary_in_range=False,
            ensure_valid_placement=True,
            reference_pos=self.table_offset,
            z_offset=0.01,
            rng=self.rng,
        )
        self.model = ManipulationTask(mujoco_arena=arena, mujoco_robots=[r.robot_model for r in self.robots],
                                      mujoco_objects=self.cube)

    def _check_success(self) -> bool:
        cube_z = self.sim.data.body_xpos[self.cube_body_id][2]
        return bool(cube_z > self.table_offset[2] + self.cube_half_size + self.lift_height)
