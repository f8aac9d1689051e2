"""The rosbags type store: ROS 2 Kilted's standard messages plus heisd_msgs from its .msg files.

The .msg files in the interface package are the single source of truth: they are
found in the installed package (``<prefix>/share/heisd_msgs/msg``, where rosidl
installs them) or in the repository (``msg/msg``), and parsed with rosbags'
``get_types_from_msg``; nothing here restates a field.
"""
from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path

from rosbags.typesys import Stores, get_typestore, get_types_from_msg
from rosbags.typesys.store import Typestore

from heisd_ros.core.errors import InvalidInputError

MSG_PACKAGE = "heisd_msgs"
MSG_DIR_ENV = "HEISD_MSG_DIR"


def msg_directory() -> Path:
    """Directory holding heisd_msgs' .msg files: $HEISD_MSG_DIR, the install prefix, or the repository."""
    candidates = []
    if os.environ.get(MSG_DIR_ENV):
        candidates.append(Path(os.environ[MSG_DIR_ENV]))
    candidates.append(Path(sys.prefix) / "share" / MSG_PACKAGE / "msg")
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / MSG_PACKAGE / "msg")
    candidates.append(Path(__file__).resolve().parents[2] / "msg" / "msg")
    for path in candidates:
        if path.is_dir() and any(path.glob("*.msg")):
            return path
    raise InvalidInputError(
        f"cannot find the {MSG_PACKAGE} .msg files; looked in {[str(c) for c in candidates]} "
        f"(set {MSG_DIR_ENV} to the directory that holds ActionChunk.msg)"
    )


@lru_cache(maxsize=1)
def heisd_typestore() -> Typestore:
    """A type store that can (de)serialise the standard ROS 2 messages and every heisd_msgs message."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    for path in sorted(msg_directory().glob("*.msg")):
        types.update(get_types_from_msg(path.read_text(), f"{MSG_PACKAGE}/msg/{path.stem}"))
    store.register(types)
    return store
