"""Bags: raw CDR from rclpy subscriptions written by BagRecorder (mcap and sqlite3)
decode to the published messages, and read_push_bag turns them into a PushRecording."""
from __future__ import annotations

import json

import numpy as np
import pytest
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import PoseStamped
from sensor_msgs.msg import JointState
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from dream_hw.errors import UserError
from dream_sysid.bag.reader import read_push_bag
from dream_sysid.bag.recorder import BagRecorder, msgtype_name
from ros_helpers import wait_for_subscriber

SCENE = '<mujoco><worldbody><body name="object"><freejoint/><geom size="0.01"/></body></worldbody></mujoco>'
HAND = [f"joint_{i}.0" for i in range(16)]
ARM = [f"fr3_joint{i}" for i in range(1, 8)]


def _pose(k: int) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + k // 10, (k % 10) * 100_000_000
    msg.header.frame_id = "world"
    msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = 0.5 + 0.001 * k, -0.01 * k, 0.011
    q = msg.pose.orientation
    q.w, q.x, q.y, q.z = float(np.cos(0.01 * k)), 0.0, 0.0, float(np.sin(0.01 * k))
    return msg


def _hand(k: int) -> JointState:
    msg = JointState(name=HAND, position=[0.01 * k + j for j in range(16)], velocity=[0.5] * 16,
                     effort=[-0.1 * k] * 16)
    msg.header.stamp.sec, msg.header.stamp.nanosec = 100 + k // 10, (k % 10) * 100_000_000 + 5
    return msg


def _traj() -> JointTrajectory:
    points = [JointTrajectoryPoint(positions=[0.1 * j + t for j in range(7)], velocities=[0.0] * 7,
                                   time_from_start=Duration(sec=int(t), nanosec=int((t % 1) * 1e9)))
              for t in (0.5, 1.25, 2.0)]
    return JointTrajectory(joint_names=ARM, points=points)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_raw_subscription_bytes_round_trip(ros_node, tmp_path, storage):
    from rosbags.rosbag2 import Reader

    from dream_sysid.bag.recorder import typestore

    node = ros_node.node
    topics = {"/dream/object/pose": PoseStamped, "/allegroHand_0/joint_states": JointState,
              "/fr3_arm_controller/joint_trajectory": JointTrajectory}
    received: dict[str, list[bytes]] = {t: [] for t in topics}
    pubs = {}
    for topic, msg_type in topics.items():
        node.create_subscription(msg_type, topic, received[topic].append, 50, raw=True)
        pubs[topic] = node.create_publisher(msg_type, topic, 50)
    for topic in topics:
        wait_for_subscriber(ros_node, topic)
    sent = {"/dream/object/pose": [_pose(k) for k in range(12)],
            "/allegroHand_0/joint_states": [_hand(k) for k in range(12)],
            "/fr3_arm_controller/joint_trajectory": [_traj()]}
    for topic, msgs in sent.items():
        for msg in msgs:
            pubs[topic].publish(msg)
    ros_node.spin_until(lambda: all(len(received[t]) == len(sent[t]) for t in topics), 10.0, "raw messages")

    bag_dir = tmp_path / "bag"
    scene = tmp_path / "scene.xml"
    scene.write_text(SCENE)
    with BagRecorder(bag_dir, storage) as bag:
        for topic, msg_type in topics.items():
            bag.add_topic(topic, msgtype_name(msg_type))
        bag.write_json("/dream/push/info", {"object_id": "puck", "scene": "../scene.xml", "object_body": "object",
                                            "joint_map": {"joint_0.0": "allegro/ffj0"}, "program": {"name": "t"}},
                       50 * 10**9)
        for topic in topics:
            for k, raw in enumerate(received[topic]):
                bag.write(topic, raw, (200 + k) * 10**9)
    bag.close()   # idempotent
    assert bag.closed and not bag.write("/dream/object/pose", received["/dream/object/pose"][0], 0)

    files = list(bag_dir.iterdir())
    assert any(f.suffix == (".mcap" if storage == "mcap" else ".db3") for f in files)
    with Reader(bag_dir) as reader:
        types = {c.topic: c.msgtype for c in reader.connections}
        assert types["/allegroHand_0/joint_states"] == "sensor_msgs/msg/JointState"
        assert types["/dream/push/info"] == "std_msgs/msg/String"
        by_topic: dict[str, list] = {}
        for conn, t_ns, raw in reader.messages():
            by_topic.setdefault(conn.topic, []).append((t_ns, bytes(raw)))
    for topic in topics:
        assert [raw for _, raw in by_topic[topic]] == [bytes(r) for r in received[topic]]
        assert [t for t, _ in by_topic[topic]] == [(200 + k) * 10**9 for k in range(len(sent[topic]))]
    # Decoded with rosbags, the bytes are the messages that were published.
    store = typestore()
    hand = store.deserialize_cdr(by_topic["/allegroHand_0/joint_states"][3][1], "sensor_msgs/msg/JointState")
    assert list(hand.name) == HAND and np.allclose(hand.position, _hand(3).position)
    assert hand.header.stamp.nanosec == _hand(3).header.stamp.nanosec
    traj = store.deserialize_cdr(by_topic["/fr3_arm_controller/joint_trajectory"][0][1],
                                 "trajectory_msgs/msg/JointTrajectory")
    assert [p.time_from_start.nanosec for p in traj.points] == [500_000_000, 250_000_000, 0]

    rec = read_push_bag(bag_dir)
    assert rec.info["object_id"] == "puck" and rec.scene == scene.resolve() and rec.object_body == "object"
    assert rec.joint_map == {"joint_0.0": "allegro/ffj0"}
    assert rec.poses.frame_id == "world" and rec.poses.pos.shape == (12, 3)
    np.testing.assert_allclose(rec.poses.t, [100 + k // 10 + (k % 10) * 0.1 for k in range(12)])
    np.testing.assert_allclose(rec.poses.pos[5], [0.505, -0.05, 0.011])
    np.testing.assert_allclose(rec.poses.quat[5], [np.cos(0.05), 0, 0, np.sin(0.05)])
    assert rec.hand_states.names == tuple(HAND)
    np.testing.assert_allclose(rec.hand_states.position[7], _hand(7).position)
    np.testing.assert_allclose(rec.hand_states.effort[:, 0], [-0.1 * k for k in range(12)])
    (traj_rec,) = rec.arm_trajectories
    assert traj_rec.names == tuple(ARM) and traj_rec.t_received == 200.0
    np.testing.assert_allclose(traj_rec.times, [0.5, 1.25, 2.0])
    np.testing.assert_allclose(traj_rec.positions[2], [0.1 * j + 2.0 for j in range(7)])
    assert rec.hand_cmds is None and rec.arm_states is None and rec.ground_truth is None


def test_receive_time_stands_in_for_zero_stamps_and_names_are_matched(tmp_path):
    """Commands without stamps (the Allegro driver's joint_cmd) get the bag's receive time;
    reordered joint names are matched by name; unnamed hand commands get the driver's names."""
    from dream_sysid.bag.export import joint_state_messages, pose_messages
    from dream_sysid.bag.recording import PoseSeries, Series

    scene = tmp_path / "scene.xml"
    scene.write_text(SCENE)
    t = np.arange(12) * 0.1 + 3.0
    with BagRecorder(tmp_path / "bag", "mcap") as bag:
        bag.write_json("/dream/push/info", {"scene": str(scene)}, 0)
        bag.add_topic("/dream/object/pose", "geometry_msgs/msg/PoseStamped")
        for t_ns, raw in pose_messages(PoseSeries(t, np.zeros((12, 3)), np.tile([1.0, 0, 0, 0], (12, 1)))):
            bag.write("/dream/object/pose", raw, t_ns + 7_000_000)
        bag.add_topic("/joint_states", "sensor_msgs/msg/JointState")
        swapped = ARM[::-1]
        # JointStates whose name order changes between messages.
        for k in range(3):
            names = ARM if k % 2 == 0 else swapped
            values = np.arange(7.0) + 10 * k
            pos = values if k % 2 == 0 else values[::-1]
            (t_ns, raw), = joint_state_messages(Series(t[k:k + 1], tuple(names), pos[None, :]))
            bag.write("/joint_states", raw, t_ns)
        bag.add_topic("/allegroHand_0/joint_cmd", "sensor_msgs/msg/JointState")
        (_, raw), = joint_state_messages(Series(np.array([0.0]), (), np.full((1, 16), 0.3)))
        bag.write("/allegroHand_0/joint_cmd", raw, 4_500_000_000)
    rec = read_push_bag(tmp_path / "bag")
    assert rec.arm_states.names == tuple(ARM)
    np.testing.assert_allclose(rec.arm_states.position, [np.arange(7.0) + 10 * k for k in range(3)])
    assert rec.hand_cmds.names == tuple(HAND)
    np.testing.assert_allclose(rec.hand_cmds.t, [4.5])          # receive time: the stamp was zero
    np.testing.assert_allclose(rec.poses.t, t)                  # header stamps, not receive times
    assert rec.object_body == "object" and rec.info == {"scene": str(scene)}


def test_recorder_refuses_existing_directory_and_bad_storage(tmp_path):
    with pytest.raises(UserError, match="exists already"):
        BagRecorder(tmp_path, "mcap")
    with pytest.raises(UserError, match="storage must be one of"):
        BagRecorder(tmp_path / "x", "rosbag1")


def test_info_json_is_written_as_std_msgs_string(tmp_path):
    from rosbags.rosbag2 import Reader

    from dream_sysid.bag.recorder import typestore

    with BagRecorder(tmp_path / "bag", "sqlite3") as bag:
        bag.write_json("/dream/push/info", {"object_id": "ü", "n": 1}, 123)
    with Reader(tmp_path / "bag") as reader:
        (conn, t_ns, raw), = list(reader.messages())
    msg = typestore().deserialize_cdr(raw, conn.msgtype)
    assert conn.msgtype == "std_msgs/msg/String" and t_ns == 123
    assert json.loads(msg.data) == {"object_id": "ü", "n": 1}
