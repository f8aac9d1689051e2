"""Observation.validate rejects malformed sensor data with a message saying what is wrong."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from heisd_ros.core.errors import InvalidInputError
from heisd_ros.core.observation import Observation

from engine_testkit import make_obs


def test_valid_observation_passes_and_chains():
    obs = make_obs(3)
    assert obs.validate() is obs


@pytest.mark.parametrize(
    "change, message",
    [
        ({"joint_positions": np.array([0.0, np.nan, 1.0])}, "NaN"),
        ({"joint_positions": np.array([0.0, 1.0])}, "must match"),
        ({"joint_positions": np.zeros((3, 1))}, "1-D"),
        ({"joint_positions": [0.0, 1.0, 2.0]}, "numpy array"),
        ({"proprio": np.array([np.inf])}, "NaN or inf"),
        ({"ee_position": np.zeros(2)}, "xyz"),
        ({"ee_position": np.array([0.0, np.nan, 0.0])}, "NaN"),
        ({"images": {"cam": np.zeros((8, 8), np.uint8)}}, "(H, W, 3)"),
        ({"images": {"cam": np.zeros((8, 8, 3), np.float32)}}, "uint8"),
        ({"images": [np.zeros((8, 8, 3), np.uint8)]}, "dict"),
        ({"instruction": "  "}, "instruction"),
        ({"joint_names": ["a", "a", "b"]}, "duplicates"),
        ({"stamp": float("nan")}, "stamp"),
    ],
)
def test_bad_observations_raise(change, message):
    obs = dataclasses.replace(make_obs(0), **change)
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        obs.validate()


def test_no_images_and_no_ee_is_allowed():
    """Text-only backbones and robots without an EE estimate are legitimate."""
    obs = Observation(images={}, instruction="wave", joint_names=[], joint_positions=np.zeros(0))
    obs.validate()
