"""A robosuite PickPlace variant that sorts a chosen subset of the four grocery objects.

robosuite's PickPlace either uses all four objects (milk, bread, cereal, can) or
one. Sorting two of them keeps the multi-object structure (each object into its
own bin, success only when all are sorted) while a scripted expert can solve it
reliably. Defining the class registers it with robosuite under its class name.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from robosuite.environments.manipulation.pick_place import PickPlace

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
