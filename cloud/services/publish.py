"""Publish the catalogue to agents: on each registered site's ``command/services`` topic,
retained (an agent that connects later gets it at once), signed with the command key when one
is given. Only the cloud's account may publish there (``pantau/ops/brokerauth.py``)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cloud.remediation.sender import CommandLink
from cloud.services.catalogue import Catalogue
from pantau.core.contract import site_services_topic
from pantau.core.services import sign_catalogue

log = logging.getLogger(__name__)


async def publish_catalogue(
    link: CommandLink,
    catalogue: Catalogue,
    sites: Mapping[str, str],
    key: Ed25519PrivateKey | None,
) -> int:
    """Publish each site's part of ``catalogue`` (``sites``: site -> district); return how many
    sites got it. Waits for the broker's acknowledgement of each."""
    now_ns = time.time_ns()
    for site, district in sorted(sites.items()):
        payload = sign_catalogue(catalogue.for_site(site, district, now_ns=now_ns), key)
        await link.publish(site_services_topic(site), payload, qos=1, retain=True)
        log.info("catalogue version %d published to %s", catalogue.version, site)
    return len(sites)
