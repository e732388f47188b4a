"""The lake on disk: layout, run reports, atomic commit and crash recovery."""
