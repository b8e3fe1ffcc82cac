"""remoteenv: turn a bare Linux GPU host reachable over SSH into a ready workstation."""

__version__ = "0.1.0"
