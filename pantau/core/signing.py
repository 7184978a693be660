"""Ed25519 signatures of commands: the command center holds the private key, agents the public
key (both as base64 of the raw 32 bytes, one line, easy to paste into ``site.yaml``)."""

from __future__ import annotations

import base64
import binascii
import secrets

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pantau.core.commands import Command, SignedCommand


class SigningKeyError(ValueError):
    """A key is not base64 of 32 bytes."""


def new_key_pair() -> tuple[str, str]:
    """A fresh ``(private, public)`` pair, each base64 of its raw 32 bytes."""
    private = Ed25519PrivateKey.generate()
    raw_private = private.private_bytes_raw()
    raw_public = private.public_key().public_bytes_raw()
    return base64.b64encode(raw_private).decode(), base64.b64encode(raw_public).decode()


def _raw(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except binascii.Error as exc:
        raise SigningKeyError(f"the {what} key is not base64: {exc}") from exc
    if len(raw) != 32:  # Ed25519 keys are 32 bytes
        raise SigningKeyError(f"the {what} key has {len(raw)} bytes; an Ed25519 key has 32")
    return raw


def load_private(text: str) -> Ed25519PrivateKey:
    """The signing key from its base64 text."""
    return Ed25519PrivateKey.from_private_bytes(_raw(text, "private"))


def load_public(text: str) -> Ed25519PublicKey:
    """The verifying key from its base64 text."""
    return Ed25519PublicKey.from_public_bytes(_raw(text, "public"))


def new_nonce() -> str:
    """128 random bits, hex."""
    return secrets.token_hex(16)


def sign(command: Command, key: Ed25519PrivateKey) -> bytes:
    """The wire payload of ``command``: its JSON and the signature over exactly that text."""
    text = command.model_dump_json()
    sig = base64.b64encode(key.sign(text.encode())).decode()
    return SignedCommand(command=text, sig=sig).model_dump_json().encode()


def verified(envelope: SignedCommand, key: Ed25519PublicKey) -> bool:
    """True if the envelope's signature holds for its command text."""
    try:
        sig = base64.b64decode(envelope.sig, validate=True)
        key.verify(sig, envelope.command.encode())
    except (binascii.Error, InvalidSignature):
        return False
    return True
