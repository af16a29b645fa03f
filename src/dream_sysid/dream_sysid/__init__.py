"""dream_sysid: the digital twin, push logging and mass identification (paper IV-B)."""
