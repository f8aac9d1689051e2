"""The shipped parameter file matches the declared parameter tables."""
from __future__ import annotations

import pytest

from heisd_ros.ros.config import ConfigError, apply_overrides, load_config, write_params_file
from heisd_ros.ros.param_specs import NODE_PARAMS, ParamSpec, spec_map, validate_overrides


def test_shipped_yaml_declares_every_parameter_of_every_node():
    config = load_config()
    assert set(config) == set(NODE_PARAMS)
    for node, params in config.items():
        assert set(params) == set(spec_map(node)), node


def test_out_of_range_value_is_rejected_with_reason(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("coordinator:\n  ros__parameters:\n    tau: 1.5\n    method: fastest\n    top_k: 2.5\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert "coordinator.tau: 1.5 is outside [-1.0, 1.0]" in text
    assert "coordinator.method: 'fastest' is not one of ar, drafter, retrieval, heisd" in text
    assert "coordinator.top_k: expected int" in text


def test_unknown_node_and_parameter_are_named(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("coordinater:\n  ros__parameters: {}\nverifier:\n  ros__parameters:\n    devise: cpu\n")
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    assert "coordinater: unknown node" in str(err.value)
    assert "verifier.devise: unknown parameter" in str(err.value)


def test_overrides_merge_and_validate(tmp_path):
    config = apply_overrides(load_config(), ["coordinator.tau:=0.25", "sim_bridge.task=nut"])
    assert config["coordinator"]["tau"] == 0.25 and config["sim_bridge"]["task"] == "nut"
    with pytest.raises(ConfigError, match="outside"):
        apply_overrides(config, ["coordinator.control_rate_hz:=500.0"])
    with pytest.raises(ConfigError, match="node.param:=value"):
        apply_overrides(config, ["tau:=0.3"])
    path = write_params_file(config, tmp_path / "p.yaml")
    assert load_config(path)["coordinator"]["tau"] == 0.25


def test_spec_checks_bool_is_not_a_number():
    spec = ParamSpec("k", 3, "count", range=(1, 5))
    assert spec.check(True) is not None
    assert spec.check(5) is None and spec.check(6) == "6 is outside [1, 5]"
    assert validate_overrides("coordinator", {"online_insert": True})[0].startswith("coordinator.online_insert: unknown")


def test_camera_topics_follow_the_bundle_by_default_and_must_fit_when_explicit():
    from heisd_ros.ros.config import camera_topics

    cams = ["agentview", "robot0_eye_in_hand"]
    assert load_config()["coordinator"]["camera_topics"] == [""]
    assert camera_topics([""], cams) == ["/camera/agentview/image_raw", "/camera/robot0_eye_in_hand/image_raw"]
    assert camera_topics(["/a", "/b"], cams) == ["/a", "/b"]
    with pytest.raises(ConfigError, match="one topic per bundle camera"):
        camera_topics(["/a"], cams)
