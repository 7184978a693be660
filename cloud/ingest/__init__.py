"""The collector's ingest: a pure core (``core``), its seams (``ports``) and the loops that
drive it (``pipeline``)."""
