"""QoS profiles of the node graph (ARCHITECTURE.md): sensor data best effort,
commands and chunks reliable, the instruction latched (transient local), and the
per-step inference services (verify, draft, retrieve) keeping only the newest
pending request."""
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

SENSOR = qos_profile_sensor_data
COMMAND = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
LATCHED = QoSProfile(
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
    history=HistoryPolicy.KEEP_LAST,
)

# A recorder (the stand-in robot, benchmarks) keeps everything: a stall of the recording
# process shows up as late arrivals, not as samples overwritten before they were read.
RECORDER = QoSProfile(depth=500, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)

# Verify / Draft / Retrieve servers: the coordinator abandons a call after its timeout and
# asks again with a newer observation. With a deeper request queue a stalled or slow
# server (SIGSTOP, CPU contention) works through the abandoned requests first and can
# answer every new one only after its caller gave up, so fresh actions never resume.
# Depth 1 drops superseded requests in the middleware. (InsertSequence keeps the default:
# inserts must not be lost.)
LATEST_REQUEST = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, history=HistoryPolicy.KEEP_LAST)
