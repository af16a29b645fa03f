"""dream_hw: the cell description, robot models, drivers and simulated hardware.

The lowest layer of dream: everything above it (perception, sysid, grasp) reads
the cell from here, and every safety limit lives in the drivers here.
"""
