"""Rollups: per camera, district and sensor, whole hours and local days, with the same meaning as
the raw points (docs/rollups.md). The collector marks hours that receive late data; the worker
rolls up each hour once it is over and again whenever it was marked."""
