"""Declarative parameter specifications of every heisd_ros node.

One table per node: name, default, description, numeric range or allowed
choices, and whether the value may change at run time. The nodes declare ROS
parameters from these tables (``heisd_ros.ros.params``), ``config/heisd.yaml``
is checked against them, and ``heisd bringup`` / the launch file use them to
validate overrides before any process starts. Pure Python: no rclpy here.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence


@dataclass(frozen=True)
class ParamSpec:
    """One ROS parameter: its type is the type of ``default``."""

    name: str
    default: Any
    description: str
    range: tuple[float, float] | None = None  # inclusive [low, high] for int / float
    choices: tuple[str, ...] | None = None  # allowed values for a string
    dynamic: bool = False  # may be changed while the node runs
    unit: str = ""

    def __post_init__(self) -> None:
        if self.range is not None and not isinstance(self.default, (int, float)):
            raise TypeError(f"{self.name}: a range needs a numeric default")
        if self.choices is not None and self.default not in self.choices:
            raise ValueError(f"{self.name}: default {self.default!r} not in {self.choices}")
        problem = self.check(self.default)
        if problem:
            raise ValueError(f"{self.name}: default is invalid: {problem}")

    @property
    def type_name(self) -> str:
        d = self.default
        if isinstance(d, bool):
            return "bool"
        if isinstance(d, int):
            return "int"
        if isinstance(d, float):
            return "float"
        if isinstance(d, str):
            return "string"
        if isinstance(d, (list, tuple)):
            if not d:
                raise TypeError(f"{self.name}: an empty list default must be typed; use a typed empty list spec")
            return f"{type(d[0]).__name__}[]"
        raise TypeError(f"{self.name}: unsupported default type {type(d).__name__}")

    def check(self, value: Any) -> str | None:
        """Return why ``value`` is not acceptable, or None if it is."""
        if self.range is not None:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return f"expected a number, got {value!r}"
            low, high = self.range
            if not (low <= value <= high):
                return f"{value} is outside [{low}, {high}]{(' ' + self.unit) if self.unit else ''}"
        if self.choices is not None and value not in self.choices:
            return f"{value!r} is not one of {', '.join(self.choices)}"
        return None

    def describe(self) -> str:
        text = self.description
        if self.unit:
            text += f" [{self.unit}]"
        if self.range is not None:
            text += f" (range {self.range[0]}..{self.range[1]})"
        if self.choices is not None:
            text += f" (one of: {', '.join(self.choices)})"
        if not self.dynamic:
            text += " (read at start-up)"
        return text


@dataclass(frozen=True)
class StringList:
    """Marker default for a string-array parameter that may be empty."""

    values: tuple[str, ...] = ()


def _p(name: str, default: Any, description: str, **kw: Any) -> ParamSpec:
    if isinstance(default, StringList):
        default = list(default.values) or [""]
    return ParamSpec(name, default, description, **kw)


DIAGNOSTICS: tuple[ParamSpec, ...] = (
    _p("diagnostics_period_s", 1.0, "Period of the /diagnostics status message", range=(0.1, 60.0), unit="s"),
)
COMMON: tuple[ParamSpec, ...] = DIAGNOSTICS + (
    _p("bundle", "default", "Model bundle: a directory path, or the name of a bundle shipped with heisd_ros"),
)

KINEMATIC_ENCODER: tuple[ParamSpec, ...] = COMMON + (
    _p("joint_states_topic", "/joint_states", "sensor_msgs/JointState input (SensorDataQoS)"),
    _p("joint_names", StringList(), "Joints to report, by name, in this order; [''] = all joints of each message"),
    _p("ee_source", "topic", "Where end-effector poses come from: pose topics, or forward kinematics of robot_model", choices=("topic", "model")),
    _p("ee_pose_topics", ["/ee_pose"], "geometry_msgs/PoseStamped topics, one per end effector (ee_source topic); the first drives the fused metric"),
    _p("ee_names", ["hand"], "Names of the end effectors, same order as ee_pose_topics / ee_frames"),
    _p("robot_model", "", "MJCF (.xml) or URDF (.urdf) model for forward kinematics (ee_source model)"),
    _p("ee_frames", StringList(), "Body or site of each end effector in robot_model (ee_source model)"),
    _p("gripper_joints", StringList(), "Per end effector, the joint whose position measures the gripper opening ('' = none)"),
    _p("gripper_closed_position", 0.0, "Gripper joint position when closed", unit="m or rad"),
    _p("gripper_open_position", 0.04, "Gripper joint position when fully open", unit="m or rad"),
    _p("instruction_topic", "/heisd/instruction", "std_msgs/String (transient local); a new instruction resets the history"),
    _p("window", 5, "Sliding window w of end-effector positions for R and D", range=(3, 50), dynamic=True),
    _p("alpha", -1.0, "Weight of R_hat in M = alpha R_hat + (1 - alpha) D_hat; < 0 = the bundle's calibrated alpha", range=(-1.0, 1.0), dynamic=True),
    _p("min_position_step_m", 0.0, "Ignore end-effector samples closer than this to the previous one", range=(0.0, 0.1), unit="m", dynamic=True),
    _p("stale_timeout_s", 0.5, "A gap longer than this between samples, or joint states older than this, counts as stale", range=(0.01, 10.0), unit="s", dynamic=True),
    _p("max_future_stamp_s", 0.5, "Drop joint states and poses stamped further than this ahead of the node clock (clock skew allowance)", range=(0.0, 3600.0), unit="s", dynamic=True),
)

RETRIEVAL_CACHE: tuple[ParamSpec, ...] = COMMON + (
    _p("top_k", 5, "Number of retrieved candidate sequences K", range=(1, 32), dynamic=True),
    _p("ef", 64, "hnswlib query breadth (higher: better recall, slower)", range=(8, 1024), dynamic=True),
    _p("joint_names", StringList(), "Joint order of the stored joint positions; requests are mapped by name ([''] = the request's order)"),
    _p("online_insert", False, "Accept verified sequences on ~/insert and add them to the index", dynamic=True),
    _p("save_on_shutdown", False, "Save the (grown) index atomically to save_path on shutdown"),
    _p("save_path", "", "Where to save the index; '' = the bundle's retrieval directory"),
)

DRAFTER: tuple[ParamSpec, ...] = COMMON + (
    _p("device", "cpu", "Torch device of the drafter", choices=("cpu", "cuda")),
    _p("num_threads", 0, "Torch CPU threads (0 = torch default)", range=(0, 64)),
    _p("max_draft_tokens", 7, "Upper bound on tokens proposed per request", range=(1, 256), dynamic=True),
)

VERIFIER: tuple[ParamSpec, ...] = COMMON + (
    _p("device", "cpu", "Torch device of the VLA", choices=("cpu", "cuda")),
    _p("num_threads", 0, "Torch CPU threads (0 = torch default)", range=(0, 64)),
    _p("warmup_steps", 2, "Decoding steps run on configure to warm up kernels and caches", range=(0, 100)),
    _p("autostart", True, "Configure and activate the lifecycle node on start-up"),
)

COORDINATOR: tuple[ParamSpec, ...] = COMMON + (
    _p("control_rate_hz", 20.0, "Rate of the control timer that publishes actions", range=(1.0, 100.0), unit="Hz"),
    _p("num_threads", 0, "Torch CPU threads for the retrieval embedding (0 = torch default)", range=(0, 64)),
    _p("method", "heisd", "Decoding method", choices=("ar", "drafter", "retrieval", "heisd"), dynamic=True),
    _p("tau", -1.0, "Fused-metric threshold: M > tau -> retrieval, M <= tau -> drafter; < 0 = the bundle's calibrated tau", range=(-1.0, 1.0), dynamic=True),
    _p("skip_schedule", "fixed", "Verify-skip schedule in the retrieval branch", choices=("none", "fixed", "adaptive"), dynamic=True),
    _p("skip_count", 2, "Fixed schedule: retrieved actions executed unverified before one verified step; adaptive: the most", range=(0, 16), dynamic=True),
    _p("skip_guard", "gripper", "Verify-skip guard: 'gripper' verifies a skipped step whose retrieved actions would open or close a gripper; 'block' also verifies one whose retrieved chunk fails the block test against the last verified chunk; 'none' skips as scheduled (reference behaviour)", choices=("gripper", "block", "none"), dynamic=True),
    _p("skip_pick", "continue", "What a skipped step executes: 'continue' = the next frame of the demonstration the latest lookup's top-1 came from (no lookup on the skipped step); 'top1' = a fresh lookup's top-1 (reference); 'nearest' = the retrieved candidate nearest the last verified chunk", choices=("continue", "top1", "nearest"), dynamic=True),
    _p("top_k", 5, "Retrieved candidate sequences verified together", range=(1, 32), dynamic=True),
    _p("relax_radius", 9, "Token-wise relaxed acceptance radius r (drafter branch)", range=(0, 255), unit="bins", dynamic=True),
    _p("emit_tokens", "verifier", "Tokens at accepted draft positions: 'verifier' = the VLA's own greedy token from the verification pass (keeps its small corrections), 'draft' = the drafted token (Spec-VLA / HeiSD paper)", choices=("verifier", "draft"), dynamic=True),
    _p("block_sum_threshold", 45, "Block acceptance: sum of token distances in a block must be below this", range=(1, 4096), unit="bins", dynamic=True),
    _p("block_max_threshold", 25, "Block acceptance: every token distance in a block must be below this", range=(1, 256), unit="bins", dynamic=True),
    _p("queue_low_watermark", 0, "Request the next inference when this many actions or fewer are queued", range=(0, 64), dynamic=True),
    _p("service_timeout_s", 2.0, "Timeout of one service call to the verifier, drafter or retrieval cache", range=(0.01, 60.0), unit="s", dynamic=True),
    _p("stale_observation_s", 1.0, "Do not infer from observations older than this (node clock)", range=(0.01, 60.0), unit="s", dynamic=True),
    _p("sync_tolerance_s", 0.01, "Camera frames and the kinematic state used together must be stamped within this of each other (the state closest to the frames is taken; raise it for unsynchronised cameras)", range=(0.0, 10.0), unit="s", dynamic=True),
    _p("max_future_stamp_s", 0.5, "Do not infer from inputs stamped further than this ahead of the node clock (clock skew allowance)", range=(0.0, 3600.0), unit="s", dynamic=True),
    _p("kinematic_state_topic", "/kinematic_encoder/kinematic_state", "heisd_msgs/KinematicState input"),
    _p("camera_topics", StringList(), "sensor_msgs/Image inputs, one per camera of the bundle, in the bundle's camera order; [''] = /camera/<name>/image_raw for each camera of the bundle"),
    _p("instruction_topic", "/heisd/instruction", "std_msgs/String (transient local): the task"),
    _p("controller_topic", "/joint_trajectory_controller/joint_trajectory", "trajectory_msgs/JointTrajectory output with future-stamped points ('' = none)"),
    _p("hold_action", [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0], "Safe action before any command was sent (delta EE: no motion, gripper -1 = open)", dynamic=True),
    _p("hold_keep_dims", ["gripper"], "Dimensions whose last commanded value is kept while holding (a held object is not dropped)", dynamic=True),
    _p("action_limit", 1.0, "Clamp every action dimension to [-limit, limit] (normalised controller units)", range=(0.0, 100.0), dynamic=True),
    _p("max_action_change", 2.0, "Largest change of one dimension between consecutive published actions (rate limit)", range=(0.0, 100.0), dynamic=True),
)

SIM_BRIDGE: tuple[ParamSpec, ...] = DIAGNOSTICS + (
    _p("task", "lift", "Simulation task", choices=("lift", "sort", "nut", "humanoid_lift")),
    _p("seed", 1000, "Seed of the first episode; episode i uses seed + i (demonstrations use seeds below 1000)", range=(0, 2**31 - 1)),
    _p("timing_mode", "lockstep", "lockstep: the simulator waits for each fresh action; realtime: it advances at the control rate, holding when no fresh action is there", choices=("lockstep", "realtime")),
    _p("control_rate_hz", 20.0, "Simulated control rate", range=(1.0, 100.0), unit="Hz"),
    _p("camera_names", ["agentview"], "Cameras to render; published on /camera/<name>/image_raw"),
    _p("image_size", 64, "Side of the square camera images", range=(16, 512), unit="px"),
    _p("max_steps", 200, "Steps before an episode is ended as a failure", range=(1, 100000)),
    _p("episodes", 1, "Episodes to run; then the bridge idles, reporting the last status (0 = forever)", range=(0, 100000)),
    _p("command_topic", "/coordinator/action_chunk", "heisd_msgs/ActionChunk commands; the first action of each fresh chunk is executed"),
    _p("action_timeout_s", 5.0, "Lockstep: hold the last command if no fresh action arrives within this", range=(0.01, 600.0), unit="s"),
    _p("start_delay_s", 0.0, "Wait this long before the first episode (lets the graph come up)", range=(0.0, 600.0), unit="s"),
)

NODE_PARAMS: Mapping[str, tuple[ParamSpec, ...]] = {
    "kinematic_encoder": KINEMATIC_ENCODER,
    "retrieval_cache": RETRIEVAL_CACHE,
    "drafter": DRAFTER,
    "verifier": VERIFIER,
    "coordinator": COORDINATOR,
    "sim_bridge": SIM_BRIDGE,
}


# Parameters every rclpy node has; allowed in parameter files, declared by rclpy itself.
ROS_BUILTIN: Mapping[str, type] = {"use_sim_time": bool}


def spec_map(node: str) -> dict[str, ParamSpec]:
    try:
        return {s.name: s for s in NODE_PARAMS[node]}
    except KeyError:
        raise KeyError(f"unknown node {node!r}; known: {', '.join(NODE_PARAMS)}") from None


def validate_overrides(node: str, values: Mapping[str, Any]) -> list[str]:
    """Problems with a node's parameter values (unknown names, wrong types, out of range)."""
    specs = spec_map(node)
    problems = []
    for name, value in values.items():
        if name in ROS_BUILTIN:
            if not isinstance(value, ROS_BUILTIN[name]):
                problems.append(f"{node}.{name}: expected {ROS_BUILTIN[name].__name__}, got {value!r}")
            continue
        spec = specs.get(name)
        if spec is None:
            problems.append(f"{node}.{name}: unknown parameter (known: {', '.join(sorted(specs))})")
            continue
        if not _same_type(spec.default, value):
            problems.append(f"{node}.{name}: expected {spec.type_name}, got {type(value).__name__} {value!r}")
            continue
        problem = spec.check(value)
        if problem:
            problems.append(f"{node}.{name}: {problem}")
    return problems


def _same_type(default: Any, value: Any) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            return False
        return all(_same_type(default[0], v) for v in value) if default else True
    return isinstance(value, type(default))


def describe_all(nodes: Sequence[str] | None = None) -> str:
    """Human-readable parameter reference, for ``heisd params``."""
    lines = []
    for node in nodes or NODE_PARAMS:
        lines.append(f"{node}:")
        for s in NODE_PARAMS[node]:
            lines.append(f"  {s.name} = {s.default!r}{'  [dynamic]' if s.dynamic else ''}")
            lines.append(f"      {s.describe()}")
    return "\n".join(lines)
