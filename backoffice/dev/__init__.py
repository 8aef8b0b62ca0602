"""Tools for developing and testing the back office offline: local stand-ins for the services it calls."""
