"""The small VLA: engine protocol, batched greedy == engine decode, save/load, config and input errors."""
import numpy as np
import pytest
import torch

from heisd_ros.core.errors import CorruptFileError, InvalidInputError
from heisd_ros.core.model import VLAModel
from heisd_ros.core.observation import Observation
from heisd_ros.core.tokenizer import ActionTokenizer
from heisd_ros.vla.config import VLAConfig
from heisd_ros.vla.policy import SmallVLA, instruction_words

WORDS = instruction_words(["lift the cube", "put the square nut on the square peg"])
TOKENIZER = ActionTokenizer(-np.ones(7), np.ones(7), mask=[True] * 6 + [False])


@pytest.fixture(scope="module")
def net():
    torch.manual_seed(0)
    return SmallVLA(VLAConfig(words=WORDS)).eval()


def observation(cfg: VLAConfig, instruction: str, seed: int) -> Observation:
    rng = np.random.default_rng(seed)
    images = {c: rng.integers(0, 256, (cfg.image_size, cfg.image_size, 3), dtype=np.uint8) for c in cfg.cameras}
    return Observation(images=images, instruction=instruction, proprio=rng.normal(size=cfg.proprio_dim).astype(np.float32))


def test_implements_the_engine_protocol_with_a_short_prefix(net):
    model = net.as_vla_model(TOKENIZER)
    assert isinstance(model, VLAModel)
    state = model.prefill(observation(net.cfg, "lift the cube", 0))
    # visual tokens + proprio + 3 instruction words: tens of tokens, as the issue asks
    assert state.prompt_length == net.cfg.visual_tokens + 1 + 3
    assert 10 <= state.prompt_length < 60
    assert model.embed(observation(net.cfg, "lift the cube", 0)).shape == (net.cfg.embed_dim,)


def test_batched_greedy_with_left_padding_matches_engine_decode(net):
    model = net.as_vla_model(TOKENIZER)
    texts = ["lift the cube", "put the square nut on the square peg"]
    obs = [observation(net.cfg, t, i) for i, t in enumerate(texts)]
    images = torch.cat([net.observation_tensors(o)[0] for o in obs])
    proprio = torch.cat([net.observation_tensors(o)[1] for o in obs])
    batched = net.greedy_bins(images, proprio, [net.prompt.ids(t) for t in texts]).numpy()
    for row, o in zip(batched, obs):
        single = model.decode(model.prefill(o), np.zeros(0, np.int64), model.tokens_per_step)
        np.testing.assert_array_equal(row, single)


def test_embedding_then_verifying_one_observation_encodes_it_once(net, monkeypatch):
    model = net.as_vla_model(TOKENIZER)
    o, other = observation(net.cfg, "lift the cube", 4), observation(net.cfg, "lift the cube", 5)
    fresh_key = model.embed(o)
    fresh = model.decode(net.as_vla_model(TOKENIZER).prefill(o), np.zeros(0, np.int64), model.tokens_per_step)
    calls = []
    encode = net.encode
    monkeypatch.setattr(net, "encode", lambda *a: calls.append(1) or encode(*a))
    key = model.embed(o)  # o was the last observation encoded (by the first embed)
    bins = model.decode(model.prefill(o), np.zeros(0, np.int64), model.tokens_per_step)
    assert calls == []  # the retrieval key and the prefix came from one encoding
    np.testing.assert_array_equal(key, fresh_key)
    np.testing.assert_array_equal(bins, fresh)
    key[:] = 0  # the caller's key is a copy
    np.testing.assert_array_equal(model.embed(o), fresh_key)
    model.embed(other)
    model.prefill(o)
    assert len(calls) == 2  # another observation is encoded anew, and so is o after it


def test_teacher_forced_logits_agree_with_engine_scoring(net):
    model = net.as_vla_model(TOKENIZER)
    o = observation(net.cfg, "lift the cube", 3)
    bins = np.array([[5, 100, 200, 7, 8, 9, 255]])
    engine = model.score(model.prefill(o), bins)[0, :-1]
    im, pr = net.observation_tensors(o)
    with torch.no_grad():
        forced = net.action_logits(im, pr, [net.prompt.ids("lift the cube")], torch.as_tensor(bins))[0].numpy()
    np.testing.assert_allclose(forced, engine, atol=1e-4)


def test_save_load_roundtrip_gives_the_same_tokens(net, tmp_path):
    net.save(tmp_path, half=False)
    loaded = SmallVLA.load(tmp_path)
    o = observation(net.cfg, "lift the cube", 1)
    a = net.as_vla_model(TOKENIZER)
    b = loaded.as_vla_model(TOKENIZER)
    np.testing.assert_array_equal(a.decode(a.prefill(o), np.zeros(0, np.int64), 7), b.decode(b.prefill(o), np.zeros(0, np.int64), 7))


def test_truncated_weights_raise_corrupt_file_error_naming_the_file(net, tmp_path):
    net.save(tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CorruptFileError, match="model.safetensors"):
        SmallVLA.load(tmp_path)


def test_weights_of_another_architecture_are_rejected(tmp_path):
    SmallVLA(VLAConfig(words=WORDS, hidden=64, heads=2, intermediate=128)).save(tmp_path)
    (tmp_path / "config.json").write_text((tmp_path / "config.json").read_text().replace('"hidden": 64', '"hidden": 128'))
    with pytest.raises(CorruptFileError, match="do not match"):
        SmallVLA.load(tmp_path)


@pytest.mark.parametrize("kw, message", [
    ({"image_size": 60}, "divisible"),
    ({"hidden": 130}, "divisible by heads"),
    ({"cameras": []}, "cameras"),
    ({"words": ["Lift"]}, "lower-case"),
    ({"layers": 0}, "layers"),
    ({"coord_channels": 1}, "coord_channels"),
])
def test_bad_config_is_rejected_with_a_message(kw, message):
    with pytest.raises(InvalidInputError, match=message):
        VLAConfig(**kw)


def test_unknown_config_keys_are_rejected():
    with pytest.raises(InvalidInputError, match="unknown keys"):
        VLAConfig.from_dict({**VLAConfig().to_dict(), "dropout": 0.1})


def test_observation_with_wrong_image_size_is_rejected(net):
    model = net.as_vla_model(TOKENIZER)
    o = observation(net.cfg, "lift the cube", 0)
    o.images["agentview"] = np.zeros((128, 128, 3), np.uint8)
    with pytest.raises(InvalidInputError, match="make_observation"):
        model.prefill(o)


def test_coord_channels_tell_the_encoder_where_a_blob_is(tmp_path):
    """With CoordConv the first conv sees x/y ramps: a bright blob moved across a black image
    changes the features even through a network whose conv weights on RGB are zeroed."""
    torch.manual_seed(0)
    net = SmallVLA(VLAConfig(words=WORDS, coord_channels=True, conv_channels=[16, 32])).eval()
    first = net.cameras[0].convs[0]
    assert first.in_channels == 5
    with torch.no_grad():
        first.weight[:, :3] = 0.0  # only the coordinate channels remain
        images = torch.zeros(1, 3, 64, 64)
        feats = net.cameras[0].convs(torch.cat([images * 2 - 1, net.cameras[0].coord_maps[None]], 1))
    # the ramps make the feature map vary across the image although the image is constant
    assert float(feats.std(dim=(2, 3)).mean()) > 1e-3
    net.save(tmp_path / "m", half=False)
    again = SmallVLA.load(tmp_path / "m")
    assert again.cfg.coord_channels and again.cfg.feature_side == 16
    obs = observation(net.cfg, "lift the cube", 3)
    assert torch.equal(net.greedy_bins(*net.observation_tensors(obs), [net.prompt(obs)]),
                       again.greedy_bins(*again.observation_tensors(obs), [again.prompt(obs)]))
