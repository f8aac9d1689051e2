"""Simulation bridge: a robosuite task as a robot on ROS topics.

Publishes what a robot stack publishes: /joint_states, /camera/<name>/image_raw,
/ee_pose (one arm) or /ee_pose/<arm> (humanoid), the instruction on
/heisd/instruction (transient local, once per episode) and ~/episode
(EpisodeStatus: step, success, held steps). Executes the first action of each
fresh ActionChunk from ``command_topic`` (SOURCE_HOLD chunks are not fresh).

Timing modes:
- lockstep: after each observation the simulator waits for a fresh action
  (up to ``action_timeout_s``, then holds) — isolates decoding fidelity;
  messages are stamped with the node clock.
- realtime: the simulator advances at the control rate on the wall clock
  whatever the inference latency; with no fresh action since the last step it
  holds (zero motion, last gripper command), as a real robot does. It publishes
  /clock, and messages are stamped in sim time (run the other nodes with
  use_sim_time).
"""
from __future__ import annotations

import collections
import sys
import threading
import time
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String

from heisd_msgs.msg import ActionChunk, EpisodeStatus
from heisd_ros.nodes.base import ERROR, OK, WARN, HeisdNode, run
from heisd_ros.ros.convert import MessageError, chunk_actions, rgb8_to_image, seconds_to_stamp
from heisd_ros.ros.qos import COMMAND, LATCHED, SENSOR


class SimBridgeNode(HeisdNode):
    NODE_NAME = "sim_bridge"

    def __init__(self) -> None:
        super().__init__()
        p = self.params
        self.realtime = p["timing_mode"] == "realtime"
        cams = [c for c in p["camera_names"] if c]
        # The simulator lives on its own thread, and must be created there: its GL context is
        # current only in the creating thread (from another one EGL renders black frames).
        self._ready, self._go = threading.Event(), threading.Event()
        self._env_error: BaseException | None = None
        self.env: Any = None
        self._running = True
        self._thread = threading.Thread(target=self._run, args=(cams,), name="heisd-sim", daemon=True)
        self._thread.start()
        self._ready.wait()
        if self._env_error is not None:
            raise self._env_error
        self.space = self.env.action_space
        self.hold_dims = self.space.gripper_dims
        self._fresh: collections.deque[np.ndarray] = collections.deque(maxlen=64)
        self._have_action = threading.Condition()
        self._last_seq = -1
        self.joint_pub = self.create_publisher(JointState, "/joint_states", SENSOR)
        self.image_pubs = {c: self.create_publisher(Image, f"/camera/{c}/image_raw", SENSOR) for c in cams}
        arms = self.env.arms
        self.pose_pubs = {a: self.create_publisher(PoseStamped, "/ee_pose" if len(arms) == 1 else f"/ee_pose/{a}", SENSOR)
                          for a in arms}
        self.instruction_pub = self.create_publisher(String, "/heisd/instruction", LATCHED)
        self.status_pub = self.create_publisher(EpisodeStatus, "~/episode", COMMAND)
        self.clock_pub = self.create_publisher(Clock, "/clock", 10) if self.realtime else None
        self.create_subscription(ActionChunk, p["command_topic"], self._on_command, COMMAND)
        self.results: list[dict[str, Any]] = []
        self._go.set()
        self.set_status(OK, f"{p['task']} ({self.env.robot_name}) in {p['timing_mode']} mode at {p['control_rate_hz']} Hz")

    # commands ------------------------------------------------------------------------------
    def _on_command(self, msg: ActionChunk) -> None:
        if msg.source == ActionChunk.SOURCE_HOLD or msg.sequence_id == self._last_seq:
            return
        try:
            actions = chunk_actions(msg)
        except MessageError as exc:
            self.count("rejected_commands")
            self.set_status(WARN, f"dropped a command: {exc}")
            return
        if actions.shape[1] != self.space.dim:
            self.count("rejected_commands")
            self.set_status(WARN, f"command of dimension {actions.shape[1]}; {self.params['task']} takes {self.space.dim} ({self.space.names})")
            return
        self._last_seq = msg.sequence_id
        with self._have_action:
            self._fresh.append(actions[0])
            self._have_action.notify()

    def _next_action(self, last: np.ndarray) -> tuple[np.ndarray, bool]:
        """The action for this step and whether it was fresh (else the hold command)."""
        with self._have_action:
            if not self.realtime and not self._fresh:
                self._have_action.wait_for(lambda: bool(self._fresh) or not self._running, self.params["action_timeout_s"])
            if self._fresh:
                action = self._fresh.popleft() if not self.realtime else self._fresh[-1]
                if self.realtime:
                    self._fresh.clear()
                return action, True
        hold = np.zeros(self.space.dim)
        hold[self.hold_dims] = last[self.hold_dims]
        return hold, False

    # the episode loop --------------------------------------------------------------------
    def _stamp(self, sim_time: float):
        return seconds_to_stamp(sim_time) if self.realtime else self.get_clock().now().to_msg()

    def _publish(self, obs: Any, sim_time: float) -> None:
        stamp = self._stamp(sim_time)
        if self.clock_pub is not None:
            self.clock_pub.publish(Clock(clock=stamp))
        js = JointState(name=list(obs.joint_names), position=obs.joint_positions.tolist(), velocity=obs.joint_velocities.tolist())
        js.header.stamp = stamp
        self.joint_pub.publish(js)
        for arm, pub in self.pose_pubs.items():
            pose = obs.ee_poses[arm]
            msg = PoseStamped()
            msg.header.stamp, msg.header.frame_id = stamp, "world"
            msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in pose.position)
            (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
             msg.pose.orientation.w) = (float(v) for v in pose.orientation)
            pub.publish(msg)
        for cam, pub in self.image_pubs.items():
            pub.publish(rgb8_to_image(obs.images[cam], stamp, cam))

    def _publish_status(self, episode: int, seed: int, obs: Any, fresh: int, held: int, done: bool, reason: str,
                sim_time: float, wall: float) -> None:
        msg = EpisodeStatus(task=self.params["task"], instruction=self.env.instruction, episode=episode, seed=seed,
                            step=obs.step, success=bool(obs.success), done=done, reason=reason, fresh_actions=fresh,
                            held_steps=held, realtime_factor=(sim_time / wall) if self.realtime and wall > 0 else 0.0)
        msg.header.stamp = self._stamp(sim_time)
        self.status_pub.publish(msg)

    def _run(self, cams: list[str]) -> None:
        from heisd_ros.sim.env import SimEnv

        p = self.params
        try:
            self.env = SimEnv(p["task"], cameras=cams, image_size=p["image_size"], control_rate=p["control_rate_hz"])
        except BaseException as exc:  # noqa: BLE001 - re-raised by the constructor
            self._env_error = exc
            self._ready.set()
            return
        self._ready.set()
        self._go.wait()
        try:
            if self._running:
                self._episodes()
        except Exception as exc:  # noqa: BLE001 - a simulator failure is reported, not swallowed
            if not self.context.ok():
                return  # shutting down: the publishers went away under the loop
            self.set_status(ERROR, f"simulation failed: {type(exc).__name__}: {exc}")
            self.get_logger().fatal(f"simulation thread failed: {exc!r}")
        finally:
            self.env.close()  # on the thread that owns its GL context

    def _episodes(self) -> None:
        p = self.params
        time.sleep(p["start_delay_s"])
        episode, offset, dt = 0, 0.0, 1.0 / p["control_rate_hz"]
        while self._running and (p["episodes"] == 0 or episode < p["episodes"]):
            seed = p["seed"] + episode
            obs = self.env.reset(seed)
            with self._have_action:
                self._fresh.clear()
            self.instruction_pub.publish(String(data=self.env.instruction))
            last = np.zeros(self.space.dim)
            fresh = held = 0
            start = time.monotonic()
            self._publish(obs, offset)
            reason = ""
            while self._running:
                if self.realtime:
                    time.sleep(max(0.0, start + (obs.step + 1) * dt - time.monotonic()))
                action, is_fresh = self._next_action(last)
                fresh, held = fresh + is_fresh, held + (not is_fresh)
                if not is_fresh:
                    self.count("held_steps")
                last = action
                obs = self.env.step(np.clip(action, self.space.low, self.space.high))
                sim_time = offset + obs.time
                self._publish(obs, sim_time)
                reason = "success" if obs.success else "max_steps" if obs.step >= p["max_steps"] else ""
                self._publish_status(episode, seed, obs, fresh, held, bool(reason), reason, obs.time, time.monotonic() - start)
                if reason:
                    break
            offset += obs.time + 1.0  # a visible gap between episodes
            self.results.append({"episode": episode, "seed": seed, "success": bool(obs.success), "steps": obs.step,
                                 "fresh": fresh, "held": held})
            self.get_logger().info(f"episode {episode} (seed {seed}): {reason} after {obs.step} steps, "
                                   f"{held} held steps")
            self.count("episodes")
            self.count("successes", int(obs.success))
            episode += 1
        if self._running:
            wins = sum(r["success"] for r in self.results)
            self.set_status(OK, f"done: {wins}/{len(self.results)} episodes succeeded")

    def diagnostic_values(self) -> dict[str, Any]:
        return {"episodes": len(self.results), "successes": sum(r["success"] for r in self.results)}

    def close(self) -> None:
        self._running = False
        with self._have_action:
            self._have_action.notify_all()
        self._go.set()  # a node closed before it finished starting
        self._thread.join(timeout=10)


def main(args: list[str] | None = None) -> int:
    return run(SimBridgeNode, args)


if __name__ == "__main__":
    sys.exit(main())
