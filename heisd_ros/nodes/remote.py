"""The engine's protocols served by other nodes: a Verifier, a Drafter and a
datastore whose work happens behind ROS services.

Used from the coordinator's inference thread (never the executor thread): each
call waits for its response with a timeout and raises ``ServiceUnavailable``
when the node is missing, times out or answers with an error, so the decoder
degrades (retrieval -> drafter, drafter -> AR) or the coordinator holds a safe
command, and everything recovers by itself when the node answers again.
"""
from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
from rclpy.client import Client
from rclpy.node import Node

from heisd_msgs.srv import Draft as DraftSrv
from heisd_msgs.srv import Retrieve, Verify
from heisd_ros.core.decoding import AcceptanceConfig, Verification
from heisd_ros.core.drafters import Draft, DraftRequest
from heisd_ros.core.errors import EmptyIndexError, HeisdError, UnknownTaskError
from heisd_ros.core.observation import Observation
from heisd_ros.core.retrieval import RetrievalHit
from heisd_ros.core.stats import Branch, StepStats
from heisd_ros.ros.convert import observation_to_msg

_MODE = {"strict": Verify.Request.ACCEPT_STRICT, "token": Verify.Request.ACCEPT_TOKEN_RELAXED,
         "block": Verify.Request.ACCEPT_BLOCK_RELAXED}


class ServiceUnavailable(HeisdError):
    """A node behind a service did not answer in time or refused the request."""


class ServiceCaller:
    """Blocking calls with a timeout, made from a thread other than the executor's."""

    def __init__(self, node: Node, srv_type: Any, name: str, timeout_s: float) -> None:
        self.client: Client = node.create_client(srv_type, name)
        self.name = name
        self.timeout_s = timeout_s
        self.failures = 0
        self.calls = 0
        self.last_error = ""

    @property
    def available(self) -> bool:
        return self.client.service_is_ready()

    def __call__(self, request: Any) -> Any:
        self.calls += 1
        if not self.client.service_is_ready():
            self._fail(f"{self.name} is not available")
        done = threading.Event()
        future = self.client.call_async(request)
        future.add_done_callback(lambda _: done.set())
        if not done.wait(self.timeout_s):
            self.client.remove_pending_request(future)
            self._fail(f"{self.name} did not answer within {self.timeout_s:.2f} s")
        response = future.result()
        if response is None:
            self._fail(f"{self.name} returned no response")
        if hasattr(response, "success") and not response.success:
            self._fail(f"{self.name} refused: {response.message}")
        self.last_error = ""
        return response

    def _fail(self, message: str) -> None:
        self.failures += 1
        self.last_error = message
        raise ServiceUnavailable(message)


class RemoteVerifier:
    """core.decoding.Verifier served by the verifier node (~/verify)."""

    def __init__(self, caller: ServiceCaller, tokenizer: Any, action_dim: int, horizon: int, n_bins: int) -> None:
        self.caller = caller
        self.tokenizer, self.action_dim, self.horizon, self.n_bins = tokenizer, action_dim, horizon, n_bins

    @property
    def tokens_per_step(self) -> int:
        return self.horizon * self.action_dim

    def verify(self, obs: Observation, draft: Draft, acceptance: AcceptanceConfig, stats: StepStats) -> Verification:
        req = Verify.Request(observation=observation_to_msg(obs), acceptance=_MODE[acceptance.mode],
                             relax_radius=int(acceptance.radius), num_tokens=self.tokens_per_step,
                             emit_verifier_tokens=acceptance.emit == "verifier")
        if not draft.empty:
            req.num_candidates, req.candidate_length = draft.candidates.shape
            req.candidates = draft.candidates.astype(int).ravel().tolist()
        rule = acceptance.block_rule
        blocks = list(rule.blocks)
        if acceptance.mode == "block" and all(list(b) == list(range(b[0], b[0] + len(b))) for b in blocks):
            req.block_sizes = [len(b) for b in blocks]
        req.block_sum_threshold, req.block_max_threshold = int(rule.sum_threshold), int(rule.max_threshold)
        resp = self.caller(req)
        s = resp.stats
        stats.drafted = 0 if draft.empty else int(draft.candidates.shape[1])
        stats.accepted = int(resp.accepted_tokens)
        stats.candidates = 0 if draft.empty else int(draft.candidates.shape[0])
        stats.accepted_per_position = [1] * stats.accepted + [0] * (stats.drafted - stats.accepted)
        stats.forward_passes = int(s.vla_forward_passes)
        stats.prefill_s, stats.verify_s, stats.decode_s = s.prefill_latency, s.verify_latency, s.decode_latency
        bins = np.asarray(resp.tokens, dtype=np.int64)
        if bins.size != self.tokens_per_step:
            raise ServiceUnavailable(f"verifier returned {bins.size} tokens, expected {self.tokens_per_step}")
        stats.emitted = int(bins.size)
        return Verification(bins, int(resp.best_candidate), [int(a) for a in resp.candidate_accepted])


class RemoteModelDrafter:
    """core.drafters.Drafter served by the drafter node (~/draft); an unavailable drafter drafts nothing."""

    branch = Branch.DRAFTER

    def __init__(self, caller: ServiceCaller, action_dim: int, n_bins: int) -> None:
        self.caller = caller
        self.action_dim, self.n_bins = action_dim, n_bins

    def propose(self, request: DraftRequest) -> Draft:
        start = time.perf_counter()
        try:
            resp = self.caller(DraftSrv.Request(observation=observation_to_msg(request.obs), num_tokens=request.num_tokens,
                                                num_candidates=1))
        except ServiceUnavailable as exc:
            return Draft(draft_s=time.perf_counter() - start, reason=f"drafter unavailable: {exc}")
        tokens = np.asarray(resp.tokens, dtype=np.int64).reshape(max(1, resp.count), -1)
        return Draft(candidates=tokens, draft_s=time.perf_counter() - start)

    def update(self, drafted: int, accepted: int) -> None:
        """The drafter node keeps no per-episode state."""

    def reset(self) -> None:
        """Nothing to forget."""


class RemoteDatastore:
    """The query side of core.retrieval.RetrievalDatastore, served by the retrieval_cache node."""

    def __init__(self, caller: ServiceCaller, horizon: int, action_dim: int, joint_names: list[str]) -> None:
        self.caller = caller
        self.horizon, self.action_dim = horizon, action_dim
        self.joint_names = joint_names

    def has_joints(self, task: str) -> bool:
        return bool(self.joint_names)

    def query(self, task: str, embedding: np.ndarray, k: int = 5, joint_positions: np.ndarray | None = None,
              follow: int = 0) -> list[RetrievalHit]:
        req = Retrieve.Request(instruction=task, embedding=np.asarray(embedding, np.float32).ravel().tolist(), k=int(k),
                               follow=int(follow))
        if joint_positions is not None:
            req.joint_names = list(self.joint_names)
            req.joint_positions = np.asarray(joint_positions, dtype=np.float64).tolist()
        try:
            resp = self.caller(req)
        except ServiceUnavailable as exc:
            text = str(exc)
            if "UnknownTaskError" in text:
                raise UnknownTaskError(text) from None
            if "EmptyIndexError" in text:
                raise EmptyIndexError(text) from None
            raise EmptyIndexError(f"retrieval unavailable: {text}") from None
        n, length = int(resp.count), int(resp.sequence_length)
        tokens = np.asarray(resp.tokens, dtype=np.int64).reshape(n, length)
        actions = np.asarray(resp.actions, dtype=np.float64).reshape(n, int(resp.horizon), int(resp.dimension))
        hits = [RetrievalHit(tokens=tokens[i], actions=actions[i], distance=float(resp.distances[i]),
                             episode=int(resp.episode_ids[i]), step=int(resp.steps[i])) for i in range(n)]
        if follow and hits:
            m = int(resp.follow_count)
            hits[0].following_tokens = np.asarray(resp.follow_tokens, dtype=np.int64).reshape(m, length)
            hits[0].following_actions = np.asarray(resp.follow_actions, dtype=np.float64).reshape(m, int(resp.horizon), int(resp.dimension))
        return hits
