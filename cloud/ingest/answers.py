"""What a site's agent is told about its messages: stored, refused (with the reason) or to be
sent again, in the contract minor the agent speaks."""

from __future__ import annotations

from dataclasses import dataclass, field

from pantau.core.compat import fields_newer_than
from pantau.core.contract import (
    CONTRACT_MINOR,
    CONTRACT_VERSION,
    ContractNotice,
    Receipt,
    RejectedMessage,
)


@dataclass
class SiteAnswers:
    """One site's answers in one written batch."""

    site: str
    minor: int  # the contract minor of the messages answered
    stored: list[int] = field(default_factory=list)
    refused: list[RejectedMessage] = field(default_factory=list)
    partial: set[int] = field(default_factory=set)  # stored, but some readings refused
    announce: bool = False  # tell the agent our contract version

    def refuse(
        self, msg: int, reason: str, detail: str, *, retry: bool = False, stored: bool = False
    ) -> None:
        """Note that (part of) message ``msg`` will not be stored, and why."""
        self.refused.append(RejectedMessage(msg=msg, reason=reason, detail=detail, retry=retry))
        if stored:
            self.partial.add(msg)

    def payloads(self, now_ns: int) -> list[bytes]:
        """The messages for the site's receipts topic (contract notice first)."""
        out: list[bytes] = []
        if self.announce:
            notice = ContractNotice(contract=CONTRACT_VERSION, minor=CONTRACT_MINOR)
            out.append(notice.model_dump_json().encode())
        if self.minor >= 1:
            if self.stored or self.refused:
                receipt = Receipt(
                    site=self.site,
                    msgs=self.stored,
                    rejected=self.refused,
                    contract=CONTRACT_VERSION,
                    ts=now_ns,
                )
                out.append(receipt.model_dump_json(exclude_none=True).encode())
            return out
        # Minor 0 knows only "stored": a message refused for good is kept by the cloud as a
        # dead letter, so the agent may forget it; one to be retried is not named.
        msgs = self.stored + [
            r.msg for r in self.refused if not r.retry and r.msg not in self.partial
        ]
        if msgs:
            receipt = Receipt(site=self.site, msgs=msgs, ts=now_ns)
            old = fields_newer_than(Receipt, 0)
            out.append(receipt.model_dump_json(exclude=set(old)).encode())
        return out
