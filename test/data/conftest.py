"""Bags written the way a third-party robot stack would, with rosbags only (no simulator)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pytest
from rosbags.rosbag2 import StoragePlugin, Writer

from heisd_ros.data.typestore import heisd_typestore


def write_foreign_bag(path: Path, joint_names: Sequence[str], positions: np.ndarray, actions: np.ndarray,
                      topics: dict[str, str], storage: StoragePlugin = StoragePlugin.MCAP,
                      action_type: str = "heisd_msgs/msg/ActionChunk", dt: float = 0.1,
                      image_size: int = 4) -> None:
    """A bag with joint states (in ``joint_names`` order), one camera, one EE pose, actions, an instruction."""
    ts = heisd_typestore()
    t = ts.types
    with Writer(path, version=9, storage_plugin=storage) as writer:
        conns = {
            "joints": writer.add_connection(topics["joints"], "sensor_msgs/msg/JointState", typestore=ts),
            "image": writer.add_connection(topics["image"], "sensor_msgs/msg/Image", typestore=ts),
            "pose": writer.add_connection(topics["pose"], "geometry_msgs/msg/PoseStamped", typestore=ts),
            "action": writer.add_connection(topics["action"], action_type, typestore=ts),
            "instruction": writer.add_connection(topics["instruction"], "std_msgs/msg/String", typestore=ts),
        }

        def stamp(k: int):  # noqa: ANN202
            ns = int(round((k * dt + 1.0) * 1e9))  # start at 1 s: a zero stamp would mean "unstamped"
            return t["builtin_interfaces/msg/Time"](sec=ns // 10**9, nanosec=ns % 10**9), ns

        st, ns = stamp(0)
        writer.write(conns["instruction"], ns, ts.serialize_cdr(t["std_msgs/msg/String"](data="stack the cups"),
                                                               "std_msgs/msg/String"))
        for k in range(len(actions)):
            st, ns = stamp(k)
            header = t["std_msgs/msg/Header"](stamp=st, frame_id="base")
            js = t["sensor_msgs/msg/JointState"](header=header, name=list(joint_names), position=positions[k],
                                                 velocity=np.zeros(len(joint_names)), effort=np.zeros(0))
            writer.write(conns["joints"], ns, ts.serialize_cdr(js, js.__msgtype__))
            img = np.full((image_size, image_size, 3), k % 256, dtype=np.uint8)
            im = t["sensor_msgs/msg/Image"](header=header, height=image_size, width=image_size, encoding="rgb8",
                                            is_bigendian=0, step=3 * image_size, data=img.reshape(-1))
            writer.write(conns["image"], ns, ts.serialize_cdr(im, im.__msgtype__))
            pose = t["geometry_msgs/msg/PoseStamped"](header=header, pose=t["geometry_msgs/msg/Pose"](
                position=t["geometry_msgs/msg/Point"](x=float(k), y=0.0, z=1.0),
                orientation=t["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)))
            writer.write(conns["pose"], ns, ts.serialize_cdr(pose, pose.__msgtype__))
            if action_type == "heisd_msgs/msg/ActionChunk":
                chunk = t[action_type]
                msg = chunk(header=header, sequence_id=k, observation_stamp=st,
                            dimension_names=[f"d{i}" for i in range(actions.shape[1])], horizon=1,
                            dimension=actions.shape[1], actions=actions[k], step_dt=dt, source=chunk.SOURCE_REPLAY,
                            drafted_tokens=0, accepted_tokens=0, vla_forward_passes=0, inference_latency=0.0,
                            fused_metric=0.0, clamped=False)
            else:
                msg = t[action_type](data="not an action")
            writer.write(conns["action"], ns, ts.serialize_cdr(msg, action_type))


@pytest.fixture
def foreign_bag_factory(tmp_path: Path):  # noqa: ANN201
    def make(name: str = "bag", **kw):  # noqa: ANN202
        path = tmp_path / name
        write_foreign_bag(path, **kw)
        return path

    return make
