"""pick_by_name: order by name, extras ignored, clear errors."""
import numpy as np
import pytest

from heisd_ros.core.joints import JointMismatchError, pick_by_name


def test_order_by_name_and_extras_ignored():
    got = pick_by_name(["c", "a"], ["a", "b", "c"], np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]))
    assert got.tolist() == [[3.0, 1.0], [6.0, 4.0]]


@pytest.mark.parametrize("names,values,match", [
    (["a", "b"], [1.0], "2 joint names but values of shape"),
    (["a", "a"], [1.0, 2.0], "duplicated: \\['a'\\]"),
    (["a", "b"], [1.0, 2.0], "gripper \\['c'\\] are missing"),
])
def test_mismatches_are_named(names, values, match):
    with pytest.raises(JointMismatchError, match=match):
        pick_by_name(["a", "c"], names, np.array(values), what="gripper")
