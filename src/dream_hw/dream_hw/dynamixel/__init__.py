"""Dynamixel protocol 2.0 without hardware: packet codec, the XC330-M288-T
control table, and a bus emulator on a pseudo-terminal that the real
dynamixel-sdk talks to (so driver code is tested as it runs on the hand)."""
