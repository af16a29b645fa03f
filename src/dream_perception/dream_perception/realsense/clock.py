"""Frame timestamps on the ROS clock. RealSense frames carry the device's time in
ms, in one of three domains: `global_time` (the device clock already mapped onto
the host's clock by librealsense) and `system_time` (host arrival time) are
host time; `hardware_clock` is the camera's own counter, which starts anywhere.
The latter is anchored once, on the first frame, to the ROS clock: stamps then
keep the device's (jitter-free) spacing rather than the USB arrival jitter."""
from __future__ import annotations

from dataclasses import dataclass, field

HOST_DOMAINS = ("global_time", "system_time")


@dataclass
class DeviceClock:
    """Maps device timestamps (ms) to ROS time (ns)."""

    ros_is_system_time: bool = True        # False with use_sim_time or another clock
    _offset_ns: dict[str, int] = field(default_factory=dict)

    def to_ros_ns(self, device_ms: float, domain: str, ros_now_ns: int) -> int:
        """ROS time (ns) of a frame stamped device_ms in `domain`, received at ros_now_ns."""
        device_ns = int(round(device_ms * 1e6))
        if domain in HOST_DOMAINS and self.ros_is_system_time:
            return device_ns
        if domain not in self._offset_ns:
            self._offset_ns[domain] = ros_now_ns - device_ns
        return device_ns + self._offset_ns[domain]

    def reset(self) -> None:
        """Forget the anchor (device restarted, bag looped)."""
        self._offset_ns.clear()
