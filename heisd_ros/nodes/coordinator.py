"""Coordinator: the HeiSD policy loop of the node graph.

An inference thread builds the model's Observation from the latest camera
frames and KinematicState, runs the chosen decoder (plain AR, drafter SD,
retrieval SD, or the HeiSD hybrid with verify-skip) against the verifier,
drafter and retrieval_cache nodes, and queues the resulting actions. A fixed-
rate timer on the node clock pops one action per tick and publishes it as an
ActionChunk (with what is still queued) and a JointTrajectory of future-stamped
points; it never waits for inference. With nothing queued it publishes the hold
command (SOURCE_HOLD) and says so in /diagnostics. A node that stops answering
degrades the decoder (retrieval -> drafter -> AR) or, for the verifier, leaves
the robot holding until it answers again.
"""
from __future__ import annotations

import math
from collections import deque
import sys
import threading
import time
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from sensor_msgs.msg import Image
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from heisd_msgs.msg import ActionChunk, KinematicState
from heisd_msgs.srv import Draft as DraftSrv
from heisd_msgs.srv import Retrieve, Verify
from heisd_ros.core.action_queue import ActionQueue, SafetyFilter
from heisd_ros.core.decoding import SKIP_VETO_NOTES, ARDecoder, build_decoder, skip_guard_options
from heisd_ros.core.drafters import RetrievalDrafter
from heisd_ros.core.errors import HeisdError
from heisd_ros.core.fused_metric import MetricValue
from heisd_ros.core.stats import Branch, StatsAggregate
from heisd_ros.nodes.base import OK, WARN, HeisdNode, run
from heisd_ros.nodes.bundles import get_bundle
from heisd_ros.nodes.remote import RemoteDatastore, RemoteModelDrafter, RemoteVerifier, ServiceCaller, ServiceUnavailable
from heisd_ros.ros.config import camera_topics
from heisd_ros.ros.convert import MessageError, image_to_rgb8, make_action_chunk, stamp_to_seconds
from heisd_ros.ros.qos import COMMAND, LATCHED, SENSOR

_REBUILD = {"method", "tau", "skip_schedule", "skip_count", "skip_guard", "skip_pick", "top_k", "relax_radius", "emit_tokens", "block_sum_threshold", "block_max_threshold"}


def metric_from_state(msg: KinematicState) -> MetricValue:
    if not msg.metric_defined:
        return MetricValue(False, *(math.nan,) * 5)
    return MetricValue(True, msg.curvature_radius, msg.displacement, msg.curvature_radius_normalized,
                       msg.displacement_normalized, msg.fused_metric)


class CoordinatorNode(HeisdNode):
    NODE_NAME = "coordinator"

    def __init__(self) -> None:
        super().__init__()
        p = self.params
        if p["num_threads"]:
            import torch

            torch.set_num_threads(p["num_threads"])
        self.bundle = get_bundle(p["bundle"])
        vla = self.bundle.vla
        self.dim_names = list(self.bundle.action_names)
        hold = np.asarray(p["hold_action"], dtype=np.float64)
        if hold.size != len(self.dim_names):
            raise ValueError(f"hold_action has {hold.size} values; the bundle's actions have {len(self.dim_names)} ({self.dim_names})")
        keep = [self.dim_names.index(n) for n in p["hold_keep_dims"] if n in self.dim_names]
        self.queue = ActionQueue(len(self.dim_names), hold, keep_dims=keep)
        self.safety = SafetyFilter(p["action_limit"], p["max_action_change"])
        self.period = 1.0 / p["control_rate_hz"]
        timeout = p["service_timeout_s"]
        self.verify_call = ServiceCaller(self, Verify, "/verifier/verify", timeout)
        self.draft_call = ServiceCaller(self, DraftSrv, "/drafter/draft", timeout)
        self.retrieve_call = ServiceCaller(self, Retrieve, "/retrieval_cache/retrieve", timeout)
        self.verifier = RemoteVerifier(self.verify_call, vla.tokenizer, vla.action_dim, vla.horizon, vla.n_bins)
        self.remote_store = RemoteDatastore(self.retrieve_call, self.bundle.datastore.horizon, vla.action_dim, [])
        self.stats = StatsAggregate()
        self.decoder = None
        self._rebuild = True
        self._lock = threading.Lock()
        self._images: dict[str, tuple[float, np.ndarray]] = {}
        # recent kinematic states by stamp: the one matching the camera frames is used
        self._kin_history: deque[tuple[float, KinematicState]] = deque(maxlen=64)
        self._synced_at = time.monotonic()
        self._sync_wait: tuple[float, float] | None = None
        self._instruction: str | None = None
        self._used_stamp = -math.inf
        self._seq = 0
        self._inference_ms: list[float] = []
        self._wake = threading.Event()
        self._running = True
        cams = camera_topics(p["camera_topics"], self.bundle.camera_names)
        for topic, name in zip(cams, self.bundle.camera_names):
            self.create_subscription(Image, topic, lambda m, n=name: self._on_image(m, n), SENSOR)
        self.create_subscription(KinematicState, p["kinematic_state_topic"], self._on_kinematic, COMMAND)
        self.create_subscription(String, p["instruction_topic"], self._on_instruction, LATCHED)
        self.chunk_pub = self.create_publisher(ActionChunk, "~/action_chunk", COMMAND)
        self.traj_pub = self.create_publisher(JointTrajectory, p["controller_topic"], COMMAND) if p["controller_topic"] else None
        self.params.on_change(self._on_params)
        self.create_timer(self.period, self._tick)
        self._worker = threading.Thread(target=self._inference_loop, name="heisd-inference", daemon=True)
        self._worker.start()
        self.set_status(WARN, "waiting for an instruction, camera frames and kinematic state")

    # inputs ------------------------------------------------------------------------------
    def _on_image(self, msg: Image, name: str) -> None:
        try:
            self._images[name] = (stamp_to_seconds(msg.header.stamp), image_to_rgb8(msg))
        except MessageError as exc:
            self.count("rejected_images")
            self.set_status(WARN, f"dropped a {name} frame: {exc}")
            return
        self._wake.set()  # a frame arriving after its kinematic state completes the observation

    def _on_kinematic(self, msg: KinematicState) -> None:
        self._kin_history.append((stamp_to_seconds(msg.header.stamp), msg))
        self._wake.set()

    def _on_instruction(self, msg: String) -> None:
        """Every instruction message starts a task or episode: queue and decoder history reset."""
        self.get_logger().info(f"instruction: {msg.data!r}")
        self._instruction = msg.data
        self.queue.clear()
        if self.decoder is not None:
            self.decoder.reset()

    def _restart_history(self, reason: str) -> None:
        """Time went backwards: what is queued and the decoder's history belong to another timeline."""
        self.count("time_resets")
        self.get_logger().info(f"history reset: {reason}")
        self._used_stamp = -math.inf
        self._kin_history.clear()
        self.queue.clear()
        if self.decoder is not None:
            self.decoder.reset()

    def _on_params(self, changed: dict[str, Any]) -> None:
        if _REBUILD & set(changed):
            self._rebuild = True
        self.safety.limit, self.safety.max_change = self.params["action_limit"], self.params["max_action_change"]
        for caller in (self.verify_call, self.draft_call, self.retrieve_call):
            caller.timeout_s = self.params["service_timeout_s"]

    # decoding ----------------------------------------------------------------------------
    def _build_decoder(self) -> Any:
        p, vla = self.params, self.bundle.vla
        tau = self.bundle.metric.tau if p["tau"] < 0 else p["tau"]
        return build_decoder(p["method"], self.verifier, lambda: RemoteModelDrafter(self.draft_call, vla.action_dim, vla.n_bins),
                             lambda follow=0: RetrievalDrafter(self.remote_store, vla, k=p["top_k"], follow=follow), tau,
                             relax_radius=p["relax_radius"], emit=p["emit_tokens"],
                             block_sum_threshold=p["block_sum_threshold"], block_max_threshold=p["block_max_threshold"],
                             skip_schedule=p["skip_schedule"], skip_count=p["skip_count"], skip_pick=p["skip_pick"],
                             **skip_guard_options(p["skip_guard"], self.bundle.action_names))

    def _observation(self):
        """The newest complete, synchronised observation not used yet, or None.

        Why synchronised: the camera frames and the kinematic state of one instant arrive
        on different topics, in either order. Pairing the newest of each gave frames of
        the previous step with the state of this one whenever the state came first (in
        lockstep simulation about every other step), an observation the policy never saw
        in training. The kinematic state closest in time to the frames is taken, and all
        stamps must lie within ``sync_tolerance_s``; otherwise the node waits for the
        missing message (counted as ``sync_waits``).
        """
        instruction, history = self._instruction, list(self._kin_history)
        if not history or instruction is None or len(self._images) < len(self.bundle.camera_names):
            return None
        frames = {n: self._images[n] for n in self.bundle.camera_names}
        reference = min(t for t, _ in frames.values())  # the newest instant every camera has a frame of
        stamp, kin = min(history, key=lambda item: abs(item[0] - reference))
        if not kin.ee_poses:
            return None
        stamps = {"kinematic state": stamp, **{f"camera {n}": t for n, (t, _) in frames.items()}}
        now = self.get_clock().now().nanoseconds * 1e-9
        oldest, ahead = min(stamps, key=lambda k: stamps[k]), max(stamps, key=lambda k: stamps[k])
        newest = stamps[ahead]
        if newest > self._used_stamp and now - stamps[oldest] > self.params["stale_observation_s"]:
            # something new came, but one input went silent: say so, not "unsynchronised"
            self.count("stale_observations")
            self.set_status(WARN, f"{oldest} is {now - stamps[oldest]:.3f} s old (stale_observation_s "
                                  f"{self.params['stale_observation_s']}): not inferring")
            return None
        spread = newest - stamps[oldest]
        if spread > self.params["sync_tolerance_s"]:
            if (stamp, reference) != self._sync_wait:  # once per unmatched pair, not per wake-up
                self._sync_wait = (stamp, reference)
                self.count("sync_waits")
            if time.monotonic() - self._synced_at > self.params["stale_observation_s"]:
                self.set_status(WARN, f"inputs not synchronised: {oldest} is {spread:.3f} s older than {ahead} "
                                      f"(sync_tolerance_s {self.params['sync_tolerance_s']}): not inferring")
            return None
        self._synced_at = time.monotonic()
        if newest - now > self.params["max_future_stamp_s"]:
            self.count("future_stamps")
            self.set_status(WARN, f"{ahead} is stamped {newest - now:.3f} s in the future: not inferring")
            return None
        if newest < self._used_stamp:  # every input is older than one already used: a bag loop or sim reset
            self._restart_history(f"input time went back by {self._used_stamp - newest:.3f} s")
        if newest <= self._used_stamp:
            return None
        pose = kin.ee_poses[0]
        obs = self.bundle.make_observation(
            images={n: img for n, (_, img) in frames.items()}, instruction=instruction,
            joint_names=list(kin.joint_names), joint_positions=np.asarray(kin.joint_positions, dtype=np.float64),
            ee_position=np.array([pose.position.x, pose.position.y, pose.position.z]),
            ee_quaternion=np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w]),
            gripper=float(kin.gripper_openings[0]) if len(kin.gripper_openings) else None, stamp=stamp)
        previous, self._used_stamp = self._used_stamp, newest
        return obs, metric_from_state(kin), kin.fused_metric, previous

    def _inference_loop(self) -> None:
        while self._running:
            self._wake.wait(0.05)
            self._wake.clear()
            if len(self.queue) > self.params["queue_low_watermark"]:
                continue
            try:
                if self._rebuild or self.decoder is None:
                    self.decoder, self._rebuild = self._build_decoder(), False
                got = self._observation()
                if got is None:
                    continue
                obs, metric, fused, previous = got
                self.remote_store.joint_names = list(obs.joint_names)
                start = time.perf_counter()
                result = self.decoder.step(obs, metric)
            except ServiceUnavailable as exc:
                self.count("inference_failures")
                self._used_stamp = previous  # the observation may be retried while it is fresh
                self.set_status(WARN, f"holding: {exc}")
                time.sleep(min(0.2, self.params["service_timeout_s"]))
                continue
            except (HeisdError, MessageError, ValueError) as exc:
                self.count("inference_errors")
                self.set_status(WARN, f"inference failed: {type(exc).__name__}: {exc}")
                continue
            latency = time.perf_counter() - start
            self._inference_ms = (self._inference_ms + [latency * 1e3])[-500:]
            self.stats.add(result.stats)
            if result.note in SKIP_VETO_NOTES:
                self.count("skip_vetoes")
            elif result.note and not isinstance(self.decoder, ARDecoder):  # AR drafts nothing by design
                self.count("fallbacks")
            self.queue.push(result.actions, meta=(result.stats, latency, fused, obs.stamp))
            self.set_status(OK, f"running {self.params['method']}")

    # output ------------------------------------------------------------------------------
    def _tick(self) -> None:
        item = self.queue.pop()
        now = self.get_clock().now()
        if item is None:
            action, source, meta = self.queue.hold(), Branch.HOLD.source, None
            self.count("hold_ticks")
        else:
            action, meta = item.action, item.meta
            source = meta[0].branch.source
            self.count("fresh_ticks")
        if len(self.queue) <= self.params["queue_low_watermark"]:
            self._wake.set()
        try:
            action, clamped = self.safety(action)
        except HeisdError:
            action, clamped = self.queue.hold(), True
        if clamped:
            self.count("clamped")
        try:
            rest = self.safety.preview(self.queue.peek_all())
        except HeisdError:  # a non-finite queued action: publish no preview of it
            rest = []
        actions = np.vstack([action] + rest) if rest else action[None]
        extra: dict[str, Any] = {"clamped": clamped}
        if meta is not None:
            stats, latency, fused, obs_stamp = meta
            extra.update(drafted_tokens=int(stats.drafted), accepted_tokens=int(stats.accepted),
                         vla_forward_passes=int(stats.forward_passes), inference_latency=float(latency),
                         fused_metric=float(fused))
        else:
            extra.update(fused_metric=math.nan)
        self._seq += 1
        chunk = make_action_chunk(actions, self.dim_names, now.to_msg(), self.period, source, self._seq, **extra)
        if meta is not None:
            sec = int(meta[3])
            chunk.observation_stamp.sec, chunk.observation_stamp.nanosec = sec, int(round((meta[3] - sec) * 1e9))
        self.chunk_pub.publish(chunk)
        if self.traj_pub is not None:
            traj = JointTrajectory(joint_names=self.dim_names)
            traj.header.stamp = chunk.header.stamp
            for i, row in enumerate(actions):
                t = i * self.period
                traj.points.append(JointTrajectoryPoint(positions=row.tolist(),
                                                        time_from_start=Duration(sec=int(t), nanosec=int((t % 1) * 1e9))))
            self.traj_pub.publish(traj)

    def diagnostic_values(self) -> dict[str, Any]:
        values: dict[str, Any] = {"queue_depth": len(self.queue), "underruns": self.queue.underruns,
                                  "verifier": "up" if self.verify_call.available else "down",
                                  "drafter": "up" if self.draft_call.available else "down",
                                  "retrieval_cache": "up" if self.retrieve_call.available else "down"}
        if self._inference_ms:
            lat = np.asarray(self._inference_ms)
            values.update(inference_ms_mean=float(lat.mean()), inference_ms_p99=float(np.percentile(lat, 99)))
        if len(self.stats):
            s = self.stats.summary()
            values["mean_accepted_length"] = s.get("mean_accepted_length")
            for branch, share in (s.get("branch_mix") or {}).items():
                values[f"branch_mix.{branch}"] = share
        return values

    def close(self) -> None:
        self._running = False
        self._wake.set()
        self._worker.join(timeout=5)


def main(args: list[str] | None = None) -> int:
    return run(CoordinatorNode, args)


if __name__ == "__main__":
    sys.exit(main())
