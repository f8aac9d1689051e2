"""RetrievalDatastore: real hnswlib indexes, joint-bin hierarchy, atomic versioned storage."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from heisd_ros.core.errors import CorruptFileError, EmptyIndexError, InvalidInputError, UnknownTaskError
from heisd_ros.core.retrieval import RetrievalDatastore

E, H, D, J = 32, 4, 7, 3
TASK = "Put the red block  in the BOWL"


def entries(n, rng, clusters=20, joints=True):
    centres = rng.normal(size=(clusters, E))
    emb = centres[rng.integers(0, clusters, n)] + 0.2 * rng.normal(size=(n, E))
    actions = rng.uniform(-1, 1, size=(n, H, D))
    tokens = rng.integers(0, 256, size=(n, H * D))
    episodes = np.arange(n) // 100
    steps = np.arange(n) % 100
    jp = rng.uniform(-1.0, 1.0, size=(n, J)) if joints else None
    return emb, actions, tokens, episodes, steps, jp


def cosine_dist(q, x):
    return 1.0 - (x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))


@pytest.fixture(scope="module")
def store_and_data():
    rng = np.random.default_rng(0)
    data = entries(3000, rng)
    ds = RetrievalDatastore(E, H, D, joint_bin_width=0.5)
    ds.build(TASK, *data[:5], joint_positions=data[5])
    return ds, data


def test_task_names_are_normalised(store_and_data):
    ds, _ = store_and_data
    assert ds.tasks() == ["put the red block in the bowl"]
    assert ds.size("  put THE red block in the bowl") == 3000
    assert ds.has_joints(TASK)


def test_exact_neighbours_recall_and_ascending(store_and_data):
    ds, (emb, actions, tokens, episodes, steps, _) = store_and_data
    rng = np.random.default_rng(1)
    recall = []
    for row in rng.choice(len(emb), 50, replace=False):
        q = emb[row] + 0.02 * rng.normal(size=E)
        hits = ds.query(TASK, q, k=5)
        dists = [h.distance for h in hits]
        assert dists == sorted(dists)
        truth = np.argsort(cosine_dist(q, emb))[:5]
        got = [h.episode * 100 + h.step for h in hits]  # row index by construction
        recall.append(len(set(got) & set(truth.tolist())) / 5)
        assert got[0] == truth[0]
        assert hits[0].distance == pytest.approx(cosine_dist(q, emb)[truth[0]], abs=1e-4)
        best = truth[0]
        assert np.array_equal(hits[0].tokens, tokens[best])
        assert np.allclose(hits[0].actions, actions[best])
        assert hits[0].scope == "collection"
    assert np.mean(recall) >= 0.95


def test_joint_bin_filter_prefers_same_bin(store_and_data):
    ds, (emb, _, _, _, _, jp) = store_and_data
    bins = np.floor(jp / 0.5).astype(int)
    row = 11
    same = np.flatnonzero((bins == bins[row]).all(axis=1))
    assert len(same) >= 5  # 64 bins over 3000 rows
    q = emb[row] + 0.01
    hits = ds.query(TASK, q, k=5, joint_positions=jp[row])
    rows = [h.episode * 100 + h.step for h in hits]
    assert all(h.scope == "bin" for h in hits)
    assert set(rows) <= set(same.tolist())
    expected = same[np.argsort(cosine_dist(q, emb[same]))[:5]]
    assert rows == expected.tolist()
    # unfiltered, the nearest rows come from other bins as well
    plain = [h.episode * 100 + h.step for h in ds.query(TASK, q, k=5)]
    assert not set(plain) <= set(same.tolist())


def test_exact_overfetch_and_callback_paths_agree(store_and_data):
    ds, (emb, _, _, _, _, jp) = store_and_data
    rng = np.random.default_rng(5)
    paths = {"exact": (2048, 4), "overfetch": (0, 4), "callback": (0, 0)}  # (exact_limit, overfetch)
    try:
        for row in rng.choice(len(emb), 20, replace=False):
            results = {}
            for name, (exact_limit, overfetch) in paths.items():
                ds.exact_limit, ds.overfetch = exact_limit, overfetch
                hits = ds.query(TASK, emb[row] + 0.01, k=5, joint_positions=jp[row])
                results[name] = [(h.episode, h.step) for h in hits]
            assert results["exact"] == results["overfetch"] == results["callback"]
    finally:
        ds.exact_limit, ds.overfetch = 2048, 4


def test_neighbour_bins_then_whole_collection_fallback():
    rng = np.random.default_rng(2)
    emb, actions, tokens, episodes, steps, _ = entries(40, rng)
    jp = np.zeros((40, J))
    jp[:2] = [0.1, 0.1, 0.1]  # bin (0,0,0): 2 rows, too sparse for k=5
    jp[2:10] = [0.6, 0.1, 0.1]  # neighbouring bin (1,0,0): 8 rows
    jp[10:] = [3.0, 3.0, 3.0]  # far away
    ds = RetrievalDatastore(E, H, D, joint_bin_width=0.5)
    ds.build(TASK, emb, actions, tokens, episodes, steps, jp)
    hits = ds.query(TASK, emb[20], k=5, joint_positions=[0.1, 0.1, 0.1])
    assert {h.scope for h in hits} == {"neighbours"}
    assert {h.step for h in hits} <= set(range(10))
    hits = ds.query(TASK, emb[20], k=2, joint_positions=[0.1, 0.1, 0.1])
    assert {h.scope for h in hits} == {"bin"} and {h.step for h in hits} == {0, 1}
    # an empty region of joint space: fall back to the whole collection
    hits = ds.query(TASK, emb[20], k=5, joint_positions=[-5.0, 9.0, 1.0])
    assert {h.scope for h in hits} == {"collection"}
    assert [h.step for h in hits] == [h.step for h in ds.query(TASK, emb[20], k=5)]
    assert hits[0].step == 20


def test_insert_then_query_finds_it_and_grows():
    rng = np.random.default_rng(3)
    ds = RetrievalDatastore(E, H, D)
    for i in range(150):  # beyond the initial capacity of 64
        size = ds.insert("stack", rng.normal(size=E), rng.uniform(-1, 1, (H, D)), rng.integers(0, 256, (H, D)), 7, i)
        assert size == i + 1
    probe = rng.normal(size=E)
    ds.insert("stack", probe, np.full((H, D), 0.5), np.full(H * D, 9), 8, 0)
    hit = ds.query("stack", probe, k=1)[0]
    assert (hit.episode, hit.step) == (8, 0) and hit.distance == pytest.approx(0.0, abs=1e-5)
    assert hit.tokens.shape == (H * D,) and hit.actions.shape == (H, D)
    assert len(ds.query("stack", probe, k=500)) == 151  # k larger than the collection


def test_follow_returns_the_entries_after_the_top_hit_in_its_own_episode():
    rng = np.random.default_rng(5)
    emb, actions, tokens, episodes, steps, _ = entries(300, rng, joints=False)  # episodes of 100 consecutive steps
    ds = RetrievalDatastore(E, H, D)
    ds.build("stack", emb[:150], actions[:150], tokens[:150], episodes[:150], steps[:150])
    for row in range(150, 300):  # online inserts are followed too
        ds.insert("stack", emb[row], actions[row], tokens[row], int(episodes[row]), int(steps[row]))
    for row, expected in [(10, [14, 18, 22]), (190, [194, 198]), (97, [])]:  # s + H, s + 2H, ... until the episode ends
        hits = ds.query("stack", emb[row], k=3, follow=3)
        assert (hits[0].episode, hits[0].step) == (episodes[row], steps[row])
        np.testing.assert_array_equal(hits[0].following_tokens, tokens[expected].reshape(len(expected), H * D))
        np.testing.assert_allclose(hits[0].following_actions, actions[expected].reshape(len(expected), H, D))
        assert all(h.following_tokens is None for h in hits[1:])  # only the top-1 is followed
    assert ds.query("stack", emb[10], k=1)[0].following_tokens is None  # follow=0: nothing fetched
    with pytest.raises(InvalidInputError, match="follow"):
        ds.query("stack", emb[10], k=1, follow=-1)


def test_errors():
    rng = np.random.default_rng(4)
    ds = RetrievalDatastore(E, H, D)
    with pytest.raises(UnknownTaskError, match="no retrieval collection"):
        ds.query("open the drawer", np.ones(E))
    ds.build("empty task", np.zeros((0, E)), np.zeros((0, H, D)), np.zeros((0, H * D), int), np.zeros(0, int), np.zeros(0, int))
    with pytest.raises(EmptyIndexError):
        ds.query("empty task", np.ones(E))
    emb, actions, tokens, episodes, steps, jp = entries(10, rng)
    ds.build("t", emb, actions, tokens, episodes, steps, jp)
    with pytest.raises(InvalidInputError, match="embedding must have shape"):
        ds.query("t", np.ones(E + 1))
    with pytest.raises(InvalidInputError, match="NaN"):
        ds.query("t", np.full(E, np.nan))
    with pytest.raises(InvalidInputError, match="joint_positions must have shape"):
        ds.query("t", np.ones(E), joint_positions=np.zeros(J + 1))
    with pytest.raises(InvalidInputError, match="must give them"):
        ds.insert("t", np.ones(E), actions[0], tokens[0], 0, 0)
    with pytest.raises(InvalidInputError, match="actions must have shape"):
        ds.build("u", emb, actions[:, :2], tokens, episodes, steps)
    with pytest.raises(InvalidInputError, match="k must be"):
        ds.query("t", np.ones(E), k=0)
    with pytest.raises(InvalidInputError, match="task"):
        ds.query("   ", np.ones(E))
    assert isinstance(UnknownTaskError("x"), KeyError)


@pytest.fixture()
def saved(tmp_path):
    rng = np.random.default_rng(6)
    ds = RetrievalDatastore(E, H, D, joint_bin_width=0.5)
    data = entries(400, rng)
    ds.build(TASK, *data[:5], joint_positions=data[5])
    other = entries(50, rng, joints=False)
    ds.build("lift the cube", *other[:5])
    path = tmp_path / "store"
    ds.save(path)
    return ds, data, path


def test_save_load_round_trip(saved):
    ds, (emb, *_, jp), path = saved
    loaded = RetrievalDatastore.load(path)
    assert loaded.tasks() == ds.tasks()
    assert loaded.size(TASK) == 400 and loaded.size("lift the cube") == 50
    for row in (0, 17, 399):
        for joints in (None, jp[row]):
            a = ds.query(TASK, emb[row], k=5, joint_positions=joints)
            b = loaded.query(TASK, emb[row], k=5, joint_positions=joints)
            assert [(h.episode, h.step, h.scope) for h in a] == [(h.episode, h.step, h.scope) for h in b]
            assert np.allclose([h.distance for h in a], [h.distance for h in b], atol=1e-5)
            assert all(np.array_equal(x.tokens, y.tokens) and np.array_equal(x.actions, y.actions) for x, y in zip(a, b))
    a, b = (store.query(TASK, emb[17], k=1, follow=2)[0] for store in (ds, loaded))  # the (episode, step) map is rebuilt on load
    assert b.following_tokens.shape[0] == a.following_tokens.shape[0] == 2 and np.array_equal(a.following_tokens, b.following_tokens)
    # the loaded store keeps accepting inserts, and can overwrite the saved copy
    assert loaded.insert(TASK, emb[0], np.zeros((H, D)), np.zeros(H * D, int), 99, 0, jp[0]) == 401
    loaded.save(path)
    assert RetrievalDatastore.load(path).size(TASK) == 401
    assert sorted(p.name for p in path.parent.iterdir()) == ["store"]  # no temp or backup left


def test_corrupt_wrong_version_missing_file(saved, tmp_path):
    _, _, path = saved
    manifest = json.loads((path / "manifest.json").read_text())
    payload = path / "c0000.npz"
    blob = bytearray(payload.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    payload.write_bytes(bytes(blob))
    with pytest.raises(CorruptFileError, match="sha256 mismatch"):
        RetrievalDatastore.load(path)
    payload.unlink()
    with pytest.raises(CorruptFileError, match="missing"):
        RetrievalDatastore.load(path)
    manifest["version"] = 99
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CorruptFileError, match="version 99"):
        RetrievalDatastore.load(path)
    (path / "manifest.json").write_text("{ truncated")
    with pytest.raises(CorruptFileError, match="unreadable manifest"):
        RetrievalDatastore.load(path)
    with pytest.raises(CorruptFileError, match="no manifest.json"):
        RetrievalDatastore.load(tmp_path / "nowhere")


def test_failed_save_keeps_previous_store(saved, monkeypatch):
    ds, (emb, *_), path = saved
    before = [(h.episode, h.step) for h in RetrievalDatastore.load(path).query(TASK, emb[3], k=5)]
    ds.insert(TASK, emb[3], np.zeros((H, D)), np.zeros(H * D, int), 77, 7, np.zeros(J))

    def disk_full(*args, **kwargs):
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError):
        ds.save(path)
    monkeypatch.undo()
    loaded = RetrievalDatastore.load(path)
    assert loaded.size(TASK) == 400
    assert [(h.episode, h.step) for h in loaded.query(TASK, emb[3], k=5)] == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["store"]


_SAVER = """
import sys, numpy as np
from heisd_ros.core.retrieval import RetrievalDatastore
rng = np.random.default_rng(int(sys.argv[2]))
n = 20000
ds = RetrievalDatastore(64, 4, 7, ef_construction=20, M=8)
ds.build("t", rng.normal(size=(n, 64)), rng.normal(size=(n, 4, 7)), rng.integers(0, 256, (n, 28)),
         np.zeros(n, int), np.full(n, int(sys.argv[2])))
ds.save(sys.argv[1])
print("ready", flush=True)
while True:
    ds.save(sys.argv[1])
"""


def test_killed_save_never_leaves_a_half_written_store(tmp_path):
    path = tmp_path / "store"
    outcomes = []
    for seed, delay in ((1, 0.05), (2, 0.15), (3, 0.3)):
        proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(path), str(seed)], stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(delay)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        loaded = RetrievalDatastore.load(path)  # a complete store, old or new, whatever the kill hit
        assert loaded.size("t") == 20000
        outcomes.append(loaded.query("t", np.ones(64), k=1)[0].step)
    assert outcomes[-1] in (1, 2, 3)
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "store"]
    assert all(".tmp-" in name or name == "store.old" for name in leftovers)
