"""Reading Hikvision ISAPI XML: namespace-blind (firmwares use ``isapi.org`` or
``hikvision.com`` namespaces, ver10 or ver20, or none), errors returned with HTTP 200, and
search times that are the recorder's local wall time even when they end in ``Z``."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET  # answers are size-bounded; no DTD is resolved
from dataclasses import dataclass

# ISAPI ResponseStatus codes (ISAPI core protocol, "ResponseStatus").
STATUS_OK, STATUS_BUSY = 1, 2
STATUS_NAMES = {
    1: "OK",
    2: "Device Busy",
    3: "Device Error",
    4: "Invalid Operation",
    5: "Invalid XML Format",
    6: "Invalid XML Content",
    7: "Reboot Required",
}


class IsapiError(Exception):
    """The recorder refused or could not answer a request (``status`` from ISAPI)."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status

    @property
    def busy(self) -> bool:
        """The recorder asked to be asked again later."""
        return self.status == STATUS_BUSY


def parse(body: bytes) -> ET.Element:
    """The XML root; a ``ResponseStatus`` that is not OK raises ``IsapiError`` (ISAPI sends
    errors with HTTP 200)."""
    if b"<!DOCTYPE" in body[:2048] or b"<!ENTITY" in body:
        raise IsapiError("answer carries a DTD (refused)")
    try:
        root = ET.fromstring(body)  # noqa: S314  # bounded, DTD refused above
    except ET.ParseError as exc:
        raise IsapiError(f"answer is not XML: {exc}") from exc
    if local(root.tag) == "ResponseStatus":
        code = int_of(root, "statusCode")
        if code not in (None, STATUS_OK):
            name = text_of(root, "statusString") or STATUS_NAMES.get(code or 0, "error")
            sub = text_of(root, "subStatusCode")
            raise IsapiError(f"{name} ({code}{', ' + sub if sub else ''})", status=code)
    return root


def local(tag: str) -> str:
    """A tag without its namespace."""
    return tag.rsplit("}", 1)[-1]


def children(element: ET.Element, name: str) -> list[ET.Element]:
    """Direct children named ``name`` in any namespace."""
    return [child for child in element if local(child.tag) == name]


def find(element: ET.Element, *path: str) -> ET.Element | None:
    """The first element down ``path`` (local names)."""
    node: ET.Element | None = element
    for name in path:
        if node is None:
            return None
        found = children(node, name)
        node = found[0] if found else None
    return node


def text_of(element: ET.Element, *path: str) -> str | None:
    """The stripped text down ``path``, ``None`` if absent or empty."""
    node = find(element, *path)
    if node is None or node.text is None:
        return None
    return node.text.strip() or None


def int_of(element: ET.Element, *path: str) -> int | None:
    """An integer down ``path``; ``None`` if absent or not one."""
    value = text_of(element, *path)
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DeviceZone:
    """How the recorder writes times: its UTC offset, and whether search times are local."""

    offset: dt.timedelta
    local_times: bool = True

    def read(self, text: str) -> dt.datetime:
        """A search time as UTC. Local-time firmwares write wall time and a misleading ``Z``."""
        value = text.strip()
        naive = value.endswith(("Z", "z"))
        parsed = dt.datetime.fromisoformat(value[:-1] if naive else value)
        if parsed.tzinfo is not None:
            return parsed.astimezone(dt.UTC)
        if self.local_times:
            return (parsed - self.offset).replace(tzinfo=dt.UTC)
        return parsed.replace(tzinfo=dt.UTC)

    def write(self, moment: dt.datetime) -> str:
        """A UTC moment as the recorder expects it in a search."""
        utc = moment.astimezone(dt.UTC).replace(microsecond=0, tzinfo=None)
        shown = utc + self.offset if self.local_times else utc
        return shown.isoformat() + "Z"
