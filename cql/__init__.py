"""CQL schema files: keyspace per backend (keyspaces/) and shared tables (tables/)."""

from pathlib import Path

ROOT = Path(__file__).parent
