"""Drafter: the bundle's small drafter model behind ~/draft (Draft.srv).

Proposes the drafter's greedy continuation of an observation (after an optional
prefix of fixed tokens); the coordinator sends it to the verifier.
"""
from __future__ import annotations

import sys
import time
from typing import Any

import numpy as np

from heisd_msgs.srv import Draft
from heisd_ros.core.errors import HeisdError
from heisd_ros.nodes.base import OK, HeisdNode, run
from heisd_ros.nodes.bundles import get_bundle
from heisd_ros.ros.convert import MessageError, msg_to_observation
from heisd_ros.ros.qos import LATEST_REQUEST


class DrafterNode(HeisdNode):
    NODE_NAME = "drafter"

    def __init__(self) -> None:
        super().__init__()
        import torch

        if self.params["num_threads"]:
            torch.set_num_threads(self.params["num_threads"])
        if self.params["device"] == "cuda" and not torch.cuda.is_available():
            raise HeisdError("device cuda requested but torch sees no CUDA device")
        self.model = get_bundle(self.params["bundle"], self.params["device"]).drafter_model
        self._latency: list[float] = []
        self.create_service(Draft, "~/draft", self._draft, qos_profile=LATEST_REQUEST)
        self.set_status(OK, f"serving ~/draft ({self.model.tokens_per_step} tokens per step)")

    def _draft(self, req: Draft.Request, resp: Draft.Response) -> Draft.Response:
        start = time.perf_counter()
        try:
            obs = msg_to_observation(req.observation)
            prefix = np.asarray(req.prefix, dtype=np.int64)
            room = self.model.tokens_per_step - prefix.size
            n = min(int(req.num_tokens) or room, room, self.params["max_draft_tokens"])
            if n < 1:
                raise HeisdError(f"nothing to draft: prefix of {prefix.size} tokens fills the step of {self.model.tokens_per_step}")
            state = self.model.prefill(obs)
            tokens = self.model.decode(state, prefix, n)
        except (HeisdError, MessageError, ValueError) as exc:
            self.count("rejected_requests")
            resp.success, resp.message = False, f"{type(exc).__name__}: {exc}"
            return resp
        resp.success, resp.count, resp.sequence_length = True, 1, int(tokens.size)
        resp.tokens = tokens.astype(int).tolist()
        resp.latency = time.perf_counter() - start
        self._latency = (self._latency + [resp.latency])[-500:]
        self.count("drafts")
        return resp

    def diagnostic_values(self) -> dict[str, Any]:
        lat = np.asarray(self._latency) * 1e3
        return {"latency_ms_mean": float(lat.mean()), "latency_ms_p99": float(np.percentile(lat, 99))} if lat.size else {}


def main(args: list[str] | None = None) -> int:
    return run(DrafterNode, args)


if __name__ == "__main__":
    sys.exit(main())
