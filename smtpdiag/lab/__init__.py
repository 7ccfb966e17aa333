"""Local servers on loopback for tests, the demo and the lab."""
