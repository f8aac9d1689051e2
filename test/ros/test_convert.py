"""Message conversion: every supported image layout, joints by name, chunks; bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sensor_msgs.msg import Image, JointState

from heisd_msgs.msg import ActionChunk
from heisd_ros.ros.convert import (
    SUPPORTED_ENCODINGS, MessageError, chunk_actions, image_to_rgb8, joint_state_to_arrays, make_action_chunk, rgb8_to_image,
    seconds_to_stamp, stamp_to_seconds,
)


def image_msg(arr: np.ndarray, encoding: str, pad: int = 0, big_endian: bool = False) -> Image:
    h, w = arr.shape[:2]
    if big_endian:
        arr = arr.astype(arr.dtype.newbyteorder(">"))
    rows = arr.reshape(h, -1).view(np.uint8).reshape(h, -1)
    padded = np.concatenate([rows, np.full((h, pad), 0xAB, np.uint8)], axis=1)
    return Image(height=h, width=w, encoding=encoding, is_bigendian=int(big_endian), step=padded.shape[1],
                 data=padded.tobytes())


RGB = np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)


@pytest.mark.parametrize("pad", [0, 3])
def test_every_8_bit_layout_becomes_the_same_rgb(pad):
    expected = RGB
    assert np.array_equal(image_to_rgb8(image_msg(RGB, "rgb8", pad)), expected)
    assert np.array_equal(image_to_rgb8(image_msg(RGB[:, :, ::-1].copy(), "bgr8", pad)), expected)
    rgba = np.concatenate([RGB, np.full((5, 4, 1), 7, np.uint8)], axis=2)
    assert np.array_equal(image_to_rgb8(image_msg(rgba, "rgba8", pad)), expected)
    bgra = np.concatenate([RGB[:, :, ::-1], np.full((5, 4, 1), 7, np.uint8)], axis=2)
    assert np.array_equal(image_to_rgb8(image_msg(bgra, "bgra8", pad)), expected)
    mono = image_to_rgb8(image_msg(RGB[:, :, :1].copy(), "mono8", pad))
    assert np.array_equal(mono, np.repeat(RGB[:, :, :1], 3, axis=2))


@pytest.mark.parametrize("big_endian", [False, True])
def test_16_bit_images_scale_to_8_bit(big_endian):
    rgb16 = RGB.astype(np.uint16) * 257
    assert np.array_equal(image_to_rgb8(image_msg(rgb16, "rgb16", 2, big_endian)), RGB)
    mono16 = image_to_rgb8(image_msg(rgb16[:, :, :1].copy(), "mono16", 0, big_endian))
    assert np.array_equal(mono16[:, :, 0], RGB[:, :, 0])


def test_bad_images_are_named():
    with pytest.raises(MessageError, match="unsupported image encoding 'yuv422'"):
        image_to_rgb8(Image(height=1, width=1, encoding="yuv422", step=2, data=b"ab"))
    msg = image_msg(RGB, "rgb8")
    msg.data = bytes(msg.data)[:-5]
    with pytest.raises(MessageError, match="truncated"):
        image_to_rgb8(msg)
    with pytest.raises(MessageError, match="step 5 is smaller"):
        image_to_rgb8(Image(height=5, width=4, encoding="rgb8", step=5, data=bytes(60)))
    with pytest.raises(MessageError, match="no pixels"):
        image_to_rgb8(Image(height=0, width=4, encoding="rgb8", step=12))


@settings(max_examples=40, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_rgb8_round_trip(h, w, seed):
    arr = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    msg = rgb8_to_image(arr, seconds_to_stamp(1.5), "cam")
    assert isinstance(msg.data, (bytes, bytearray)) or len(msg.data) == h * w * 3
    assert np.array_equal(image_to_rgb8(msg), arr)


# encoding -> (its channels in memory order, bytes per channel), written out from REP 104 / sensor_msgs
LAYOUTS = {"rgb8": ("rgb", 1), "bgr8": ("bgr", 1), "rgba8": ("rgba", 1), "bgra8": ("bgra", 1), "mono8": ("m", 1),
           "8UC1": ("m", 1), "8UC3": ("rgb", 1), "rgb16": ("rgb", 2), "bgr16": ("bgr", 2), "rgba16": ("rgba", 2),
           "bgra16": ("bgra", 2), "mono16": ("m", 2), "16UC1": ("m", 2)}


def test_every_supported_encoding_has_a_layout_here():
    assert set(LAYOUTS) == set(SUPPORTED_ENCODINGS)


@settings(max_examples=80, deadline=None)
@given(enc=st.sampled_from(sorted(LAYOUTS)), h=st.integers(1, 9), w=st.integers(1, 9), pad=st.integers(0, 7),
       big_endian=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_any_encoding_round_trips(enc, h, w, pad, big_endian, seed):
    channels, size = LAYOUTS[enc]
    dtype = np.uint8 if size == 1 else np.uint16
    raw = np.random.default_rng(seed).integers(0, np.iinfo(dtype).max + 1, size=(h, w, len(channels)), dtype=dtype)
    got = image_to_rgb8(image_msg(raw, enc, pad, big_endian and size == 2))
    pick = [0, 0, 0] if channels == "m" else [channels.index(c) for c in "rgb"]
    expected = raw[:, :, pick] if size == 1 else (raw[:, :, pick].astype(np.uint32) // 257).astype(np.uint8)
    assert got.shape == (h, w, 3) and got.dtype == np.uint8
    assert np.array_equal(got, expected)


@settings(max_examples=40, deadline=None)
@given(enc=st.sampled_from(sorted(LAYOUTS)), h=st.integers(1, 6), w=st.integers(1, 6), cut=st.integers(1, 40))
def test_any_truncated_image_is_rejected_not_garbled(enc, h, w, cut):
    channels, size = LAYOUTS[enc]
    msg = image_msg(np.zeros((h, w, len(channels)), np.uint8 if size == 1 else np.uint16), enc)
    msg.data = bytes(msg.data)[: max(0, len(msg.data) - cut)]
    with pytest.raises(MessageError, match="truncated"):
        image_to_rgb8(msg)


@settings(max_examples=60, deadline=None)
@given(names=st.lists(st.sampled_from(["a", "b", "c", "d"]), min_size=1, max_size=6),
       values=st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=0, max_size=7))
def test_any_joint_state_converts_exactly_or_raises(names, values):
    """Whatever arrives, the result is the named values themselves or a MessageError, never garbage."""
    try:
        s = joint_state_to_arrays(joint_msg(names, values), ["a", "b"])
    except MessageError:
        ok = len(set(names)) == len(names) and len(values) == len(names) and {"a", "b"} <= set(names) and all(
            np.isfinite(values[names.index(j)]) for j in "ab")
        assert not ok, "a valid JointState was rejected"
        return
    assert s.positions.tolist() == [values[names.index("a")], values[names.index("b")]]
    assert np.all(np.isfinite(s.positions))


def joint_msg(names, pos, vel=()):
    return JointState(name=list(names), position=list(pos), velocity=list(vel))


def test_joints_are_matched_by_name_not_index():
    msg = joint_msg(["b", "extra", "a", "c"], [2.0, 9.0, 1.0, 3.0], [0.2, 0.9, 0.1, 0.3])
    s = joint_state_to_arrays(msg, ["a", "b", "c"])
    assert s.names == ["a", "b", "c"]
    assert s.positions.tolist() == [1.0, 2.0, 3.0] and s.velocities.tolist() == [0.1, 0.2, 0.3]
    everything = joint_state_to_arrays(msg, [""])
    assert everything.names == ["b", "extra", "a", "c"]
    assert joint_state_to_arrays(joint_msg(["a"], [1.0]), None).velocities is None


@pytest.mark.parametrize("msg,match", [
    (joint_msg(["a", "b"], [1.0]), "2 joint names but values of shape \\(1,\\)"),
    (joint_msg(["a", "a"], [1.0, 2.0]), "duplicated"),
    (joint_msg(["a", "b"], [1.0, float("nan")]), "non-finite values for \\['b'\\]"),
    (joint_msg(["a", "b"], [1.0, 2.0], [0.0, float("inf")]), "b \\(velocity\\)"),
    (joint_msg(["a", "b"], [1.0, 2.0], [0.0]), "velocities"),
    (joint_msg([], []), "no joint names"),
])
def test_malformed_joint_states_are_rejected(msg, match):
    with pytest.raises(MessageError, match=match):
        joint_state_to_arrays(msg, ["a", "b"])


def test_missing_requested_joint_is_named():
    with pytest.raises(MessageError, match="joints \\['c'\\] are missing"):
        joint_state_to_arrays(joint_msg(["a", "b"], [1.0, 2.0]), ["a", "c"])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.floats(-10, 10), min_size=1, max_size=24, unique=True), st.randoms(use_true_random=False))
def test_any_permutation_of_joints_gives_the_same_positions(values, rnd):
    names = [f"j{i}" for i in range(len(values))]
    order = list(range(len(values)))
    rnd.shuffle(order)
    msg = joint_msg([names[i] for i in order], [values[i] for i in order])
    assert joint_state_to_arrays(msg, names).positions.tolist() == values


def test_action_chunk_round_trip_and_validation():
    acts = np.arange(14, dtype=float).reshape(2, 7) / 10
    msg = make_action_chunk(acts, list("abcdefg"), seconds_to_stamp(3.25), 0.05, ActionChunk.SOURCE_DRAFTER,
                            sequence_id=4, accepted_tokens=5, clamped=True)
    assert np.array_equal(chunk_actions(msg), acts)
    assert (msg.horizon, msg.dimension, msg.accepted_tokens, msg.clamped) == (2, 7, 5, True)
    assert stamp_to_seconds(msg.header.stamp) == 3.25
    with pytest.raises(MessageError, match="non-finite"):
        make_action_chunk(np.array([[np.nan] * 7]), list("abcdefg"), seconds_to_stamp(0), 0.05, 0)
    with pytest.raises(MessageError, match="6 dimension names"):
        make_action_chunk(acts, list("abcdef"), seconds_to_stamp(0), 0.05, 0)
    msg.actions = msg.actions[:-1]
    with pytest.raises(MessageError, match="13 values for horizon 2 x dimension 7"):
        chunk_actions(msg)
    with pytest.raises(AttributeError, match="no field 'acceptance'"):
        make_action_chunk(acts, list("abcdefg"), seconds_to_stamp(0), 0.05, 0, acceptance=1)


@given(st.floats(0, 2e9, allow_nan=False))
def test_stamp_round_trip(t):
    assert abs(stamp_to_seconds(seconds_to_stamp(t)) - t) < 1e-6 * max(1.0, t / 1e3)


def test_observation_round_trip_and_bad_observation():
    from heisd_ros.core.observation import Observation
    from heisd_ros.ros.convert import msg_to_observation, observation_to_msg

    obs = Observation(images={"agentview": RGB, "wrist": RGB[::-1].copy()}, instruction="lift the cube",
                      joint_names=["a", "b"], joint_positions=np.array([0.5, -0.5]), proprio=np.array([0.1, 0.2, 1.0]), stamp=12.5)
    back = msg_to_observation(observation_to_msg(obs, observation_id=3))
    assert list(back.images) == ["agentview", "wrist"]
    assert all(np.array_equal(back.images[k], obs.images[k]) for k in obs.images)
    assert back.instruction == obs.instruction and back.joint_names == ["a", "b"] and back.stamp == 12.5
    assert back.joint_positions.tolist() == [0.5, -0.5] and back.proprio.tolist() == [0.1, 0.2, 1.0]
    msg = observation_to_msg(obs)
    msg.proprio = [float("nan")]
    with pytest.raises(MessageError, match="bad Observation"):
        msg_to_observation(msg)
    msg = observation_to_msg(obs)
    msg.camera_names = ["agentview"]
    with pytest.raises(MessageError, match="2 images but 1 camera names"):
        msg_to_observation(msg)


def test_verify_requests_carry_the_acceptance_rule_and_token_emission():
    from heisd_msgs.srv import Verify

    from heisd_ros.nodes.verifier import acceptance_from_request

    req = Verify.Request(acceptance=Verify.Request.ACCEPT_BLOCK_RELAXED, relax_radius=4, block_sizes=[3, 3, 1],
                         block_sum_threshold=15, block_max_threshold=8, emit_verifier_tokens=True)
    got = acceptance_from_request(req, 7)
    assert (got.mode, got.radius, got.emit) == ("block", 4, "verifier")
    assert (got.block_rule.blocks, got.block_rule.sum_threshold, got.block_rule.max_threshold) == (((0, 1, 2), (3, 4, 5), (6,)), 15, 8)
    req.emit_verifier_tokens, req.acceptance = False, Verify.Request.ACCEPT_TOKEN_RELAXED
    assert acceptance_from_request(req, 7).emit == "draft"
    req.acceptance = 9
    with pytest.raises(Exception, match="unknown acceptance mode 9"):
        acceptance_from_request(req, 7)
