"""The embedded store: immutable segments, deletions and a typed manifest in a folder."""
