"""The retrieval_cache node in its own process: same hits as the datastore, online insert, save."""
from __future__ import annotations

import numpy as np
import pytest

from ros_harness import wait_for
from heisd_msgs.srv import InsertSequence, Retrieve
from heisd_ros.core.retrieval import RetrievalDatastore
from heisd_ros.ros.config import apply_overrides, load_config, write_params_file
from heisd_ros.ros.graph import NodeGraph
from test_node_params import call

pytestmark = pytest.mark.ros
TASK = "lift the cube"


@pytest.fixture
def store_bundle(tmp_path):
    rng = np.random.default_rng(0)
    store = RetrievalDatastore(embed_dim=16, horizon=2, action_dim=7, joint_bin_width=0.5)
    n = 200
    store.build(TASK, rng.normal(size=(n, 16)).astype(np.float32), rng.uniform(-1, 1, size=(n, 2, 7)),
                rng.integers(0, 256, size=(n, 14)), np.arange(n) // 50, np.arange(n) % 50,
                joint_positions=rng.uniform(-1, 1, size=(n, 3)))
    store.save(tmp_path / "bundle" / "retrieval")
    return tmp_path / "bundle", store, rng


def start(tmp_path, bundle, *overrides):
    config = apply_overrides(load_config(), [f"retrieval_cache.bundle:={bundle}", "retrieval_cache.joint_names:=[a, b, c]", *overrides])
    params = write_params_file({"retrieval_cache": config["retrieval_cache"]}, tmp_path / "p.yaml")
    return NodeGraph(["retrieval_cache"], params, stream=None).start()


def test_retrieve_matches_the_datastore_and_maps_joints_by_name(ros_node, store_bundle, tmp_path):
    bundle, store, rng = store_bundle
    graph = start(tmp_path, bundle)
    try:
        key = rng.normal(size=16).astype(np.float32)
        joints = np.array([0.1, -0.2, 0.3])
        req = Retrieve.Request(instruction="Lift  the CUBE", embedding=key.tolist(), k=5,
                               joint_names=["c", "a", "b"], joint_positions=[joints[2], joints[0], joints[1]])
        resp = call(ros_node.node, Retrieve, "/retrieval_cache/retrieve", req)
        assert resp.success, resp.message
        expected = store.query(TASK, key, k=5, joint_positions=joints)
        assert resp.count == 5 and resp.sequence_length == 14 and (resp.horizon, resp.dimension) == (2, 7)
        assert list(resp.episode_ids) == [h.episode for h in expected]
        assert list(resp.steps) == [h.step for h in expected]
        assert np.array_equal(np.asarray(resp.tokens).reshape(5, 14), np.stack([h.tokens for h in expected]))
        assert np.allclose(np.asarray(resp.actions).reshape(5, 2, 7), np.stack([h.actions for h in expected]))
        assert np.allclose(resp.distances, [h.distance for h in expected], atol=1e-6)
        assert resp.follow_count == 0 and not resp.follow_tokens  # follow not asked for

        req.follow = 3  # the entries after the top-1 in its own episode (H = 2: steps s + 2, s + 4, s + 6)
        resp = call(ros_node.node, Retrieve, "/retrieval_cache/retrieve", req)
        top = store.query(TASK, key, k=5, joint_positions=joints, follow=3)[0]
        m = top.following_tokens.shape[0]
        assert resp.success and resp.follow_count == m and m >= 1
        assert np.array_equal(np.asarray(resp.follow_tokens).reshape(m, 14), top.following_tokens)
        assert np.allclose(np.asarray(resp.follow_actions).reshape(m, 2, 7), top.following_actions)

        bad = call(ros_node.node, Retrieve, "/retrieval_cache/retrieve",
                   Retrieve.Request(instruction="stack the cubes", embedding=key.tolist(), k=5))
        assert not bad.success and "stack the cubes" in bad.message
        short = call(ros_node.node, Retrieve, "/retrieval_cache/retrieve",
                     Retrieve.Request(instruction=TASK, embedding=key[:8].tolist(), k=5))
        assert not short.success and "16" in short.message
        refused = call(ros_node.node, InsertSequence, "/retrieval_cache/insert", InsertSequence.Request(instruction=TASK))
        assert not refused.success and "online_insert is false" in refused.message
    finally:
        codes = graph.stop()
    assert codes["retrieval_cache"] == 0


def test_online_insert_is_saved_on_shutdown(ros_node, store_bundle, tmp_path):
    bundle, store, rng = store_bundle
    saved = tmp_path / "grown"
    graph = start(tmp_path, bundle, "retrieval_cache.online_insert:=true", "retrieval_cache.save_on_shutdown:=true",
                  f"retrieval_cache.save_path:={saved}")
    key = rng.normal(size=16).astype(np.float32)
    try:
        req = InsertSequence.Request(instruction=TASK, embedding=key.tolist(), joint_names=["a", "b", "c"],
                                     joint_positions=[0.0, 0.0, 0.0], horizon=2, dimension=7,
                                     tokens=list(range(14)), actions=[0.5] * 14, episode_id=99, step=3)
        resp = call(ros_node.node, InsertSequence, "/retrieval_cache/insert", req)
        assert resp.success and resp.size == 201
    finally:
        codes = graph.stop()
    assert codes["retrieval_cache"] == 0
    wait_for(lambda: (saved / "manifest.json").exists(), 5, "the saved store")
    grown = RetrievalDatastore.load(saved)
    hit = grown.query(TASK, key, k=1, joint_positions=np.zeros(3))[0]
    assert (hit.episode, hit.step) == (99, 3) and hit.tokens.tolist() == list(range(14))
