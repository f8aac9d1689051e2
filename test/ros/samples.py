"""Deterministic, fully populated heisd_msgs values shared by a test and its
peer process, and a field-by-field comparison that names the first difference."""
from __future__ import annotations

import array
import math
from typing import Any

import numpy as np
from geometry_msgs.msg import Pose
from sensor_msgs.msg import Image

from heisd_msgs.msg import ActionChunk, KinematicState, Observation
from heisd_msgs.srv import Verify


def kinematic_state(seq: int) -> KinematicState:
    m = KinematicState()
    m.header.stamp.sec = 100 + seq
    m.header.stamp.nanosec = 250_000_000
    m.header.frame_id = "base_link"
    m.joint_names = [f"joint{i}" for i in range(7)]
    m.joint_positions = [0.1 * i + seq for i in range(7)]
    m.joint_velocities = [-0.01 * i for i in range(7)]
    m.ee_names = ["right_hand", "left_hand"]
    poses = []
    for k in range(2):
        p = Pose()
        p.position.x, p.position.y, p.position.z = 0.5 + k, -0.25, 1.0 + 0.001 * seq
        p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = 0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)
        poses.append(p)
    m.ee_poses = poses
    m.gripper_openings = [1.0, 0.25]
    m.phase = KinematicState.PHASE_TRANSPORT
    m.window = 5
    m.metric_defined = True
    m.curvature_radius = 0.125
    m.displacement = 0.0625
    m.curvature_radius_normalized = 0.5
    m.displacement_normalized = 0.75
    m.fused_metric = 0.625
    m.alpha = 0.5
    m.novelty = 0.03125
    return m


def action_chunk(seq: int) -> ActionChunk:
    m = ActionChunk()
    m.header.stamp.sec = 200 + seq
    m.header.stamp.nanosec = 50_000_000
    m.header.frame_id = "base_link"
    m.sequence_id = seq
    m.observation_stamp.sec = 199 + seq
    m.observation_stamp.nanosec = 950_000_000
    m.dimension_names = ["dx", "dy", "dz", "droll", "dpitch", "dyaw", "gripper"]
    m.horizon = 2
    m.dimension = 7
    m.actions = [0.01 * i - 0.05 for i in range(14)]
    m.step_dt = 0.05
    m.source = ActionChunk.SOURCE_RETRIEVAL_SKIP
    m.drafted_tokens = 14
    m.accepted_tokens = 11
    m.vla_forward_passes = 3
    m.inference_latency = 0.0421875
    m.fused_metric = 0.5
    m.clamped = True
    return m


def observation() -> Observation:
    m = Observation()
    m.header.stamp.sec = 42
    m.observation_id = 7
    img = Image(height=4, width=3, encoding="rgb8", step=9)
    img.data = np.arange(36, dtype=np.uint8).tobytes()
    m.images = [img]
    m.camera_names = ["agentview"]
    m.instruction = "lift the cube"
    m.joint_names = ["j0", "j1"]
    m.joint_positions = [0.5, -0.5]
    m.proprio = [0.1, 0.2, 0.3, 1.0]
    return m


def verify_request() -> Verify.Request:
    r = Verify.Request()
    r.observation = observation()
    r.num_candidates = 2
    r.candidate_length = 7
    r.candidates = list(range(100, 114))
    r.acceptance = Verify.Request.ACCEPT_BLOCK_RELAXED
    r.relax_radius = 9
    r.block_sizes = [3, 3, 1]
    r.block_sum_threshold = 45
    r.block_max_threshold = 25
    r.num_tokens = 7
    r.emit_verifier_tokens = True
    return r


def verify_response_for(req: Verify.Request) -> Verify.Response:
    """What the peer's test service answers: a pure function of the request."""
    r = Verify.Response()
    r.success = True
    r.message = f"{req.observation.instruction}|{req.observation.images[0].width}x{req.observation.images[0].height}"
    r.sequence_length = req.num_tokens
    r.tokens = list(req.candidates[: req.candidate_length])[::-1]
    r.actions = [t / 255.0 for t in r.tokens]
    r.accepted_tokens = sum(req.block_sizes)
    r.best_candidate = req.num_candidates - 1 + (100 if req.emit_verifier_tokens else 0)  # the flag crossed the wire
    r.candidate_accepted = [req.relax_radius, req.block_max_threshold]
    r.stats.branch = 2
    r.stats.vla_forward_passes = 2
    r.stats.total_latency = float(sum(req.observation.proprio))
    return r


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """Path and values of the first field where two ROS messages differ, or None."""
    if hasattr(a, "get_fields_and_field_types"):
        if type(a) is not type(b):
            return f"{path}: type {type(a).__name__} != {type(b).__name__}"
        for name in a.get_fields_and_field_types():
            d = first_difference(getattr(a, name), getattr(b, name), f"{path}.{name}")
            if d:
                return d
        return None
    if isinstance(a, (list, tuple, array.array, np.ndarray)) or isinstance(b, (list, tuple, array.array, np.ndarray)):
        la, lb = list(a), list(b)
        if len(la) != len(lb):
            return f"{path}: length {len(la)} != {len(lb)}"
        for i, (x, y) in enumerate(zip(la, lb)):
            d = first_difference(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if a != b and not (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)):
        return f"{path}: {a!r} != {b!r}"
    return None
