"""Mass (and friction) identification from a push: the DREAM method's core (paper IV-B)."""
