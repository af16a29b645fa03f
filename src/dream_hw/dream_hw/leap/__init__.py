"""The LEAP hand (16 Dynamixel XC330-M288-T) driven by dream itself.

conventions: angles, ticks, currents; config: what the cell says about the
hand; port: the SDK port handler; safety: caps, clamps and the watchdog;
driver: the ROS-free control loop the ROS node wraps.
"""
