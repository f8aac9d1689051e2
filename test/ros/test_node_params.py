"""Node processes declare their parameters from the YAML file, reject bad
values with a reason, apply valid run-time changes and stop cleanly on SIGINT."""
from __future__ import annotations


import pytest
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters

from ros_harness import call_service, wait_for
from heisd_ros.ros.config import apply_overrides, load_config, write_params_file
from heisd_ros.ros.graph import NodeGraph

pytestmark = pytest.mark.ros


def call(node, srv_type, name, request, timeout=15.0):
    return call_service(node, srv_type, name, request, timeout)


def double(name, value):
    return Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value))


def string(name, value):
    return Parameter(name=name, value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value))


@pytest.fixture
def params_file(tmp_path, tiny_bundle):
    config = apply_overrides(load_config(), ["coordinator.tau:=0.42", "coordinator.top_k:=3", "coordinator.control_rate_hz:=12.5",
                                             f"coordinator.bundle:={tiny_bundle}"])
    return write_params_file(config, tmp_path / "params.yaml")


def test_node_loads_yaml_and_validates_runtime_changes(ros_node, params_file):
    graph = NodeGraph(["coordinator"], params_file, stream=None).start()
    try:
        node = ros_node.node
        got = call(node, GetParameters, "/coordinator/get_parameters",
                   GetParameters.Request(names=["tau", "top_k", "control_rate_hz", "method"]))
        assert [v.double_value for v in (got.values[0], got.values[2])] == [0.42, 12.5]
        assert got.values[1].integer_value == 3 and got.values[3].string_value == "heisd"

        described = call(node, DescribeParameters, "/coordinator/describe_parameters",
                         DescribeParameters.Request(names=["tau"])).descriptors[0]
        assert described.floating_point_range[0].from_value == -1.0 and described.floating_point_range[0].to_value == 1.0
        assert "Fused-metric threshold" in described.description

        results = call(node, SetParameters, "/coordinator/set_parameters", SetParameters.Request(parameters=[
            double("tau", 0.2), double("tau", 1.5), string("method", "fastest"), double("control_rate_hz", 10.0),
        ])).results
        assert results[0].successful
        assert not results[1].successful and "out of range" in results[1].reason.lower()
        assert not results[2].successful and "not one of ar, drafter, retrieval, heisd" in results[2].reason
        assert not results[3].successful and "read at start-up only" in results[3].reason
        got = call(node, GetParameters, "/coordinator/get_parameters", GetParameters.Request(names=["tau", "method"]))
        assert got.values[0].double_value == 0.2 and got.values[1].string_value == "heisd"
    finally:
        codes = graph.stop()
    assert codes == {"coordinator": 0}, graph.nodes[0].output


def test_out_of_range_yaml_value_stops_the_node_with_a_reason(tmp_path):
    # bypass load_config's own validation to prove the node itself also rejects it
    bad = tmp_path / "bad.yaml"
    bad.write_text("coordinator:\n  ros__parameters:\n    top_k: 99\n")
    lines: list[str] = []
    graph = NodeGraph(["coordinator"], bad, stream=None, on_line=lambda _, line: lines.append(line)).start()
    try:
        assert graph.wait(timeout=30) == 1, "node should exit"
    finally:
        graph.stop()
    assert graph.process("coordinator").returncode != 0
    wait_for(lambda: any("top_k" in line for line in lines), 5, "the reason in the node's output")
    text = "\n".join(lines)
    assert "top_k" in text and "out of range" in text.lower(), text


@pytest.mark.parametrize("node", ["kinematic_encoder", "retrieval_cache", "drafter", "verifier", "coordinator", "sim_bridge"])
def test_every_node_starts_from_the_yaml_and_stops_on_sigint(ros_node, node, tmp_path, tiny_bundle):
    config = apply_overrides(load_config(), [f"{n}.bundle:={tiny_bundle}" for n in ("kinematic_encoder", "retrieval_cache",
                                                                                   "drafter", "verifier", "coordinator")])
    params = write_params_file(config, tmp_path / "params.yaml")
    graph = NodeGraph([node], params, stream=None).start()
    try:
        got = call(ros_node.node, GetParameters, f"/{node}/get_parameters",
                   GetParameters.Request(names=["diagnostics_period_s"]))
        assert got.values[0].double_value == 1.0
    finally:
        codes = graph.stop()
    assert codes == {node: 0}, graph.nodes[0].output
