"""Variants of robosuite environments that this project's tasks need.

Defining a class registers it with robosuite under its class name, so
``robosuite.make("PickPlaceSubset", ...)`` works once this module is imported.

- PickPlaceSubset: robosuite's PickPlace uses all four grocery objects (milk,
  bread, cereal, can) or one. Sorting a subset keeps the multi-object structure
  (each object into its own bin, success only when all are sorted) while a
  scripted expert can solve it reliably.
- HumanoidLift: robosuite's Lift puts a GR1 so far from its 0.8 m table that the
  cube is out of the arms' reach (shoulder to cube 0.78 m, arm 0.43 m). A
  shorter, higher table shifted under the right hand makes it reachable, and
  the cube's yaw is kept within +-15 degrees so a palm meets a face, not an edge.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from robosuite.environments.manipulation.lift import Lift
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
    """Lift with the table (and so the cube) where a GR1 with a fixed lower body can reach it."""

    def __init__(self, table_offset: Sequence[float] = (0.0, -0.1, 1.0),
                 table_full_size: Sequence[float] = (0.3, 0.6, 0.05), **kwargs) -> None:
        self._humanoid_table_offset = np.asarray(table_offset, dtype=np.float64)
        if self._humanoid_table_offset.shape != (3,):
            raise ValueError(f"table_offset must be (x, y, z), got {table_offset}")
        super().__init__(table_full_size=tuple(table_full_size), **kwargs)

    def _load_model(self) -> None:
        self.table_offset = self._humanoid_table_offset  # Lift fixes it at (0, 0, 0.8) before loading
        if self.placement_initializer is None:  # Lift adds its cube to a sampler it is given
            self.placement_initializer = UniformRandomSampler(
                name="ObjectSampler",
                x_range=[-0.03, 0.03],
                y_range=[-0.03, 0.03],
                rotation=(-np.pi / 12, np.pi / 12),
                rotation_axis="z",
                ensure_object_boundary_in_range=False,
                ensure_valid_placement=True,
                reference_pos=self.table_offset,
                z_offset=0.01,
                rng=self.rng,
            )
        super()._load_model()
