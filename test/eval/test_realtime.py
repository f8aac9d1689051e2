"""Realtime timing: a decoder slower than the control period leaves ticks without a fresh action, which hold."""
from __future__ import annotations

import time

import numpy as np
import pytest

from heisd_ros.bundle import load_bundle
from heisd_ros.eval.closed_loop import _realtime_episode, hold_dims
from heisd_ros.eval.measures import Meter, MethodRun
from heisd_ros.eval.rollout import open_env

pytestmark = pytest.mark.sim


class SlowDecoder:
    """A real decoder that takes at least ``delay`` s per call (a larger model on the same robot)."""

    def __init__(self, inner, delay: float) -> None:  # noqa: ANN001
        self.inner, self.delay = inner, delay

    def step(self, obs, metric=None):  # noqa: ANN001, ANN201
        start = time.perf_counter()
        result = self.inner.step(obs, metric)
        time.sleep(max(0.0, self.delay - (time.perf_counter() - start)))
        return result

    def reset(self) -> None:
        self.inner.reset()


class RecordingEnv:
    """The simulator, remembering every command it executed."""

    def __init__(self, env) -> None:  # noqa: ANN001
        self.env, self.actions = env, []

    def reset(self, seed: int):  # noqa: ANN201
        return self.env.reset(seed)

    def step(self, action):  # noqa: ANN001, ANN201
        self.actions.append(np.array(action, dtype=float))
        return self.env.step(action)


def test_hold_dims_are_grippers_and_hands():
    assert hold_dims(["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]) == [6]
    assert hold_dims(["right_dx", "right_hand_0", "left_hand_1", "left_gripper"]) == [1, 2, 3]


def test_slow_decoder_holds_with_zero_motion_and_the_last_gripper_command(sim_bundle):
    _, bundle_dir = sim_bundle
    bundle = load_bundle(bundle_dir)
    period = 1.0 / bundle.control_rate_hz
    with open_env(bundle, "lift") as env:
        recorder = RecordingEnv(env)
        run = MethodRun("ar", "lift", "realtime")
        meter = Meter(bundle, run)
        try:
            success, ticks, held, _ = _realtime_episode(bundle, recorder, SlowDecoder(bundle.make_decoder("ar"), 4 * period),
                                                        1000, 12, env.arms[0], meter)
        finally:
            meter.close()
    assert ticks == 12 and not success
    assert held >= 6  # about 3 of every 4 ticks find no fresh action
    assert 1 <= len(run.records) <= ticks - held + 2  # + one pushed after the last tick, + one in flight at the end
    grip = hold_dims(bundle.action_names)
    arm = [i for i in range(len(bundle.action_names)) if i not in grip]
    last = None
    holds = 0
    for action in recorder.actions:
        if np.all(action[arm] == 0.0):
            holds += 1
            if last is not None:
                np.testing.assert_array_equal(action[grip], last[grip])  # the gripper keeps its command
        else:
            last = action
    assert holds >= held  # every held tick was zero motion (a real action is almost never exactly zero)
