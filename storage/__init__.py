"""Connections to the databases, made in one place: driver set-up and driver errors → kernel."""
