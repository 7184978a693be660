"""Per-site device budgets: one site cannot create unbounded series in InfluxDB.

Every camera id, sensor (id, kind) and district a site reports becomes a tag value, so a site
that invents ids (a cardinality bomb) would slow every query and, at InfluxDB's
``max-values-per-tag``, get other sites' new devices refused. Each site may use at most
``max_devices`` such keys; readings of further keys are dead-lettered (``device_budget``), never
written. The keys are learnt as they arrive (a collector restart learns them again).
"""

from __future__ import annotations

from pantau.core.contract import READING_KINDS, ReadingBatch


class DeviceBudget:
    """The device keys seen per site, each site capped at ``max_devices``."""

    def __init__(self, *, max_devices: int, max_sites: int) -> None:
        self._max_devices = max_devices
        self._max_sites = max_sites
        self._known: dict[str, set[str]] = {}

    def admit(self, site: str, key: str) -> bool:
        """True if ``key`` is known for ``site`` or fits in its budget (then it is learnt)."""
        known = self._known.get(site)
        if known is None:
            if len(self._known) >= self._max_sites:
                return False
            known = self._known[site] = set()
        if key in known:
            return True
        if len(known) >= self._max_devices:
            return False
        known.add(key)
        return True

    def filter(self, batch: ReadingBatch) -> tuple[ReadingBatch, list[str]]:
        """The batch without readings of devices over budget, and the refused keys."""
        refused: list[str] = []

        def ok(key: str) -> bool:
            if self.admit(batch.site, key):
                return True
            refused.append(key)
            return False

        if not ok(f"district:{batch.district}"):
            return batch.model_copy(update={kind: [] for kind in READING_KINDS}), refused
        cameras = [r for r in batch.cameras if ok(f"camera:{r.camera}")]
        streams = [r for r in batch.streams if ok(f"camera:{r.camera}")]
        sensors = [r for r in batch.sensors if ok(f"sensor:{r.sensor}:{r.kind}")]
        recordings = [
            r for r in batch.recordings if ok(f"camera:{r.camera}") and ok(f"recorder:{r.recorder}")
        ]
        disks = [r for r in batch.disks if ok(f"recorder:{r.recorder}:{r.disk}")]
        devices = [r for r in batch.devices if ok(f"camera:{r.device}")]
        if not refused:
            return batch, []
        update = {
            "cameras": cameras,
            "streams": streams,
            "sensors": sensors,
            "recordings": recordings,
            "disks": disks,
            "devices": devices,
        }
        return batch.model_copy(update=update), sorted(set(refused))
