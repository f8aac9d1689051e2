"""Verifier: the full VLA as a lifecycle node.

configure = load the bundle's VLA on the chosen device and warm it up; activate
= serve ~/verify; deactivate = refuse requests; cleanup = free the model.
~/verify scores every candidate in ONE forward pass (tree attention), applies
the requested acceptance rule and completes the action greedily
(Verify.srv); with no candidates it is plain autoregressive decoding.
"""
from __future__ import annotations

import gc
import sys
import time
from typing import Any

import numpy as np
from rclpy.lifecycle import State, TransitionCallbackReturn

from heisd_msgs.srv import Verify
from heisd_ros.core.acceptance import BlockRule
from heisd_ros.core.decoding import AcceptanceConfig, speculate, verify_draft
from heisd_ros.core.drafters import Draft
from heisd_ros.core.errors import HeisdError
from heisd_ros.core.stats import Branch, StepStats, StatsAggregate
from heisd_ros.nodes.base import ERROR, OK, WARN, HeisdLifecycleNode, run
from heisd_ros.nodes.bundles import example_observation, get_bundle
from heisd_ros.ros.convert import MessageError, msg_to_observation
from heisd_ros.ros.qos import LATEST_REQUEST

_MODES = {Verify.Request.ACCEPT_STRICT: "strict", Verify.Request.ACCEPT_TOKEN_RELAXED: "token",
          Verify.Request.ACCEPT_BLOCK_RELAXED: "block"}


def acceptance_from_request(req: Verify.Request, action_dim: int) -> AcceptanceConfig:
    mode = _MODES.get(int(req.acceptance))
    if mode is None:
        raise HeisdError(f"unknown acceptance mode {req.acceptance}; use ACCEPT_STRICT, ACCEPT_TOKEN_RELAXED or ACCEPT_BLOCK_RELAXED")
    rule = BlockRule.for_dim(action_dim)
    if mode == "block" and len(req.block_sizes):
        sizes, start, blocks = list(req.block_sizes), 0, []
        if sum(sizes) != action_dim:
            raise HeisdError(f"block_sizes {sizes} do not add up to the action dimension {action_dim}")
        for size in sizes:
            blocks.append(tuple(range(start, start + size)))
            start += size
        rule = BlockRule(blocks=tuple(blocks), sum_threshold=int(req.block_sum_threshold or 45),
                         max_threshold=int(req.block_max_threshold or 25))
    return AcceptanceConfig(mode=mode, radius=int(req.relax_radius), block_rule=rule,
                            emit="verifier" if req.emit_verifier_tokens else "draft")


class VerifierNode(HeisdLifecycleNode):
    NODE_NAME = "verifier"

    def __init__(self) -> None:
        super().__init__()
        self.model = None
        self.active = False
        self.stats = StatsAggregate()
        self.create_service(Verify, "~/verify", self._verify, qos_profile=LATEST_REQUEST)
        self.set_status(WARN, "unconfigured")
        if self.params["autostart"]:
            self.create_timer(0.0, self._autostart_once)
            self._autostarted = False

    def _autostart_once(self) -> None:
        if getattr(self, "_autostarted", True):
            return
        self._autostarted = True
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    # lifecycle -----------------------------------------------------------------------
    def on_configure(self, state: State) -> TransitionCallbackReturn:
        import torch

        try:
            if self.params["num_threads"]:
                torch.set_num_threads(self.params["num_threads"])
            device = self.params["device"]
            if device == "cuda" and not torch.cuda.is_available():
                raise HeisdError("device cuda requested but torch sees no CUDA device")
            bundle = get_bundle(self.params["bundle"], device)
            self.bundle, self.model = bundle, bundle.vla
            t0 = time.perf_counter()
            for _ in range(self.params["warmup_steps"]):
                obs = example_observation(bundle)
                speculate(self.model, obs, Draft(), AcceptanceConfig(), StepStats(branch=Branch.AR))
            self.get_logger().info(f"VLA loaded on {device}; {self.params['warmup_steps']} warm-up steps in {time.perf_counter() - t0:.2f} s")
        except Exception as exc:  # noqa: BLE001 - any load failure is reported, the node stays unconfigured
            self.set_status(ERROR, f"configure failed: {type(exc).__name__}: {exc}")
            return TransitionCallbackReturn.FAILURE
        self.set_status(WARN, "configured (inactive)")
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: State) -> TransitionCallbackReturn:
        self.active = True
        self.set_status(OK, "active: serving ~/verify")
        return super().on_activate(state)

    def on_deactivate(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self.set_status(WARN, "inactive")
        return super().on_deactivate(state)

    def on_cleanup(self, state: State) -> TransitionCallbackReturn:
        self.model = None
        self.bundle = None
        gc.collect()
        self.set_status(WARN, "unconfigured")
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: State) -> TransitionCallbackReturn:
        self.active = False
        self.model = None
        return TransitionCallbackReturn.SUCCESS

    # service -------------------------------------------------------------------------
    def _verify(self, req: Verify.Request, resp: Verify.Response) -> Verify.Response:
        if not self.active or self.model is None:
            resp.success, resp.message = False, "verifier is not active"
            self.count("refused_inactive")
            return resp
        start = time.perf_counter()
        model = self.model
        try:
            obs = msg_to_observation(req.observation)
            k, length = int(req.num_candidates), int(req.candidate_length)
            cand = np.asarray(req.candidates, dtype=np.int64)
            if cand.size != k * length:
                raise HeisdError(f"{cand.size} candidate tokens for {k} candidates of length {length}")
            total = int(req.num_tokens) or model.tokens_per_step
            if total != model.tokens_per_step:
                raise HeisdError(f"num_tokens {total} differs from the model's {model.tokens_per_step} tokens per step")
            acceptance = acceptance_from_request(req, model.action_dim)
            draft = Draft(candidates=cand.reshape(k, length)) if k and length else Draft()
            branch = Branch.AR if draft.empty else (Branch.RETRIEVAL if acceptance.mode == "block" else Branch.DRAFTER)
            stats = StepStats(branch=branch)
            outcome = verify_draft(model, obs, draft, acceptance, stats)
            bins = outcome.bins
        except (HeisdError, MessageError, ValueError) as exc:
            self.count("rejected_requests")
            resp.success, resp.message = False, f"{type(exc).__name__}: {exc}"
            return resp
        stats.total_s = time.perf_counter() - start
        self.stats.add(stats)
        actions = model.tokenizer.decode(bins.reshape(model.horizon, model.action_dim))
        resp.success = True
        resp.sequence_length = int(bins.size)
        resp.tokens = bins.astype(int).tolist()
        resp.actions = np.asarray(actions, dtype=np.float64).ravel().tolist()
        resp.accepted_tokens = int(stats.accepted)
        resp.best_candidate = int(outcome.best)
        resp.candidate_accepted = [int(a) for a in outcome.per_candidate]
        resp.stats.branch = branch.source
        resp.stats.drafted_tokens, resp.stats.accepted_tokens = int(stats.drafted), int(stats.accepted)
        resp.stats.emitted_tokens, resp.stats.vla_forward_passes = int(stats.emitted), int(stats.forward_passes)
        resp.stats.candidates = int(stats.candidates)
        resp.stats.prefill_latency, resp.stats.verify_latency = stats.prefill_s, stats.verify_s
        resp.stats.decode_latency, resp.stats.total_latency = stats.decode_s, stats.total_s
        self.count("verified")
        return resp

    def diagnostic_values(self) -> dict[str, Any]:
        if not len(self.stats):
            return {"active": self.active}
        s = self.stats.summary()
        return {"active": self.active, "steps": s.get("steps"), "mean_accepted_length": s.get("mean_accepted_length"),
                "forward_passes_per_step": s.get("forward_passes_per_step"),
                "latency_ms_mean": (s.get("latency_ms") or {}).get("mean")}


def main(args: list[str] | None = None) -> int:
    return run(VerifierNode, args)


if __name__ == "__main__":
    sys.exit(main())
