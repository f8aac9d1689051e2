"""Bundle manifest checks: a bad bundle is refused with a message naming what is wrong."""
import json
import shutil

import pytest

from heisd_ros.bundle import Bundle, BundleError, load_bundle
from heisd_ros.bundle.format import FORMAT_VERSION, seal
from heisd_ros.cli import main
from heisd_ros.core.errors import CorruptFileError, InvalidInputError


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "bundle"
    code = main(["build-bundle", "--data", "synthetic:3:12", "--out", str(out), "--steps", "3", "--drafter-steps", "2",
                 "--holdout", "1", "--batch-size", "8", "--quiet"])
    assert code == 0
    return out


@pytest.fixture
def bundle(source, tmp_path):
    copy = tmp_path / "bundle"
    shutil.copytree(source, copy)
    return copy


def test_built_bundle_loads_and_records_its_build(bundle):
    b = load_bundle(bundle)
    assert isinstance(b, Bundle)
    m = b.manifest
    assert m["format_version"] == FORMAT_VERSION and m["heisd_ros_version"]
    assert set(m["stages"]) >= {"train", "train-drafter", "build-cache", "calibrate", "build-bundle"}
    assert "build-bundle" in m["stages"]["train"]["command"]
    assert m["seeds"]["train"] == 0
    assert {s["role"] for s in m["sources"]} == {"train", "heldout"}
    assert "vla/model.safetensors" in m["files"] and "README.md" in m["files"]
    assert b.tasks == {"lift": "lift the cube"}
    assert b.camera_names == ["agentview", "robot0_eye_in_hand"] and b.image_size == 64
    assert b.control_rate_hz == 20.0 and b.action_names[-1] == "gripper"
    assert "tau" in (bundle / "README.md").read_text()


def test_corrupt_file_is_named(bundle):
    path = bundle / "drafter" / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"drafter/model.safetensors: sha256 mismatch"):
        load_bundle(bundle)


def test_missing_file_is_named(bundle):
    (bundle / "calibration.json").unlink()
    with pytest.raises(BundleError, match="calibration.json listed in the manifest is missing"):
        load_bundle(bundle)


def test_wrong_format_version_says_so(bundle):
    path = bundle / "manifest.json"
    m = json.loads(path.read_text())
    m["format_version"] = FORMAT_VERSION + 1
    path.write_text(json.dumps(m))
    with pytest.raises(BundleError, match=f"format version {FORMAT_VERSION + 1}.*reads version {FORMAT_VERSION}"):
        load_bundle(bundle)


def test_missing_manifest_and_unknown_bundle(bundle, tmp_path):
    (bundle / "manifest.json").unlink()
    with pytest.raises(BundleError, match="manifest.json: missing"):
        load_bundle(bundle)
    with pytest.raises(BundleError, match="neither a directory nor a bundle shipped"):
        load_bundle(str(tmp_path / "nope"))


def test_resealed_tampering_still_fails_on_content(bundle):
    # a consistent manifest over an invalid calibration: checksums pass, content check names the file
    path = bundle / "calibration.json"
    record = json.loads(path.read_text())
    record["metric"]["tau"] = 7.0
    path.write_text(json.dumps(record))
    seal(bundle)
    with pytest.raises(BundleError, match="calibration.json: invalid calibration"):
        load_bundle(bundle)


def test_bundle_error_is_a_corrupt_file_error():
    assert issubclass(BundleError, CorruptFileError)


def test_make_decoder_rejects_unknown_method_and_override(bundle):
    b = load_bundle(bundle)
    with pytest.raises(InvalidInputError, match="unknown decoding method"):
        b.make_decoder("beam")
    with pytest.raises(InvalidInputError, match="unknown"):
        b.make_decoder("ar", tau=0.3)
    assert b.make_decoder("heisd", tau=0.25, skip_schedule="adaptive", top_k=3).tau == 0.25


def test_command_reports_bad_data_as_an_error(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path / "missing"), "--bundle", str(tmp_path / "b"), "--quiet"])
    assert code == 2
    assert "not a directory of bags" in capsys.readouterr().err


def test_resume_keeps_recorded_stages_and_reseals(bundle):
    before = json.loads((bundle / "manifest.json").read_text())
    code = main(["build-bundle", "--data", "synthetic:3:12", "--out", str(bundle), "--resume", "--holdout", "1", "--quiet"])
    assert code == 0
    after = load_bundle(bundle).manifest
    for stage in ("train", "train-drafter", "build-cache", "calibrate"):
        assert after["stages"][stage] == before["stages"][stage]
    assert after["files"]["vla/model.safetensors"] == before["files"]["vla/model.safetensors"]


def test_non_empty_output_needs_force_or_resume(bundle, capsys):
    assert main(["build-bundle", "--data", "synthetic:3:12", "--out", str(bundle), "--quiet"]) == 2
    assert "--force" in capsys.readouterr().err
