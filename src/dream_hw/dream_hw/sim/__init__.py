"""Simulated hardware: MuJoCo physics behind the exact interfaces of the real drivers."""
