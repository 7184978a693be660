"""HTTP-style authentication as IP cameras use it: Digest (RFC 7616, MD5) and Basic."""

from __future__ import annotations

import base64
import hashlib
import os
import re

_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split ``Digest realm="x", nonce="y"`` into ``("digest", {...})``."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM.finditer(rest)
    }
    return scheme.lower(), params


def choose_challenge(headers: list[str]) -> tuple[str, dict[str, str]] | None:
    """Prefer Digest over Basic among ``WWW-Authenticate`` headers."""
    parsed = [parse_challenge(h) for h in headers if h.strip()]
    for scheme in ("digest", "basic"):
        for item in parsed:
            if item[0] == scheme:
                return item
    return None


def authorization(
    challenge: tuple[str, dict[str, str]], *, method: str, uri: str, username: str, password: str
) -> str:
    """Build the ``Authorization`` header answering ``challenge``."""
    scheme, params = challenge
    if scheme == "basic":
        token = base64.b64encode(f"{username}:{password}".encode()).decode()
        return f"Basic {token}"
    realm, nonce = params.get("realm", ""), params.get("nonce", "")
    algorithm = params.get("algorithm", "MD5")
    hash_name = "sha256" if algorithm.upper().startswith("SHA-256") else "md5"

    def h(text: str) -> str:
        return hashlib.new(hash_name, text.encode(), usedforsecurity=False).hexdigest()

    ha1 = h(f"{username}:{realm}:{password}")
    ha2 = h(f"{method}:{uri}")
    qop_options = [q.strip() for q in params.get("qop", "").split(",") if q.strip()]
    fields = [f'username="{username}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"']
    if "auth" in qop_options:
        cnonce = os.urandom(8).hex()
        nc = "00000001"
        response = h(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        fields += ["qop=auth", f"nc={nc}", f'cnonce="{cnonce}"']
    else:
        response = h(f"{ha1}:{nonce}:{ha2}")
    fields.append(f'response="{response}"')
    if "opaque" in params:
        fields.append(f'opaque="{params["opaque"]}"')
    if "algorithm" in params:
        fields.append(f"algorithm={algorithm}")
    return "Digest " + ", ".join(fields)


def verify_digest(
    header: str, *, method: str, username: str, password: str, realm: str, nonce: str
) -> bool:
    """Check a Digest ``Authorization`` header (used by the simulated cameras)."""
    scheme, params = parse_challenge(header)
    if scheme != "digest" or params.get("username") != username or params.get("nonce") != nonce:
        return False
    ha1 = hashlib.md5(f"{username}:{realm}:{password}".encode(), usedforsecurity=False).hexdigest()
    ha2 = hashlib.md5(
        f"{method}:{params.get('uri', '')}".encode(), usedforsecurity=False
    ).hexdigest()
    if params.get("qop") == "auth":
        material = f"{ha1}:{nonce}:{params.get('nc')}:{params.get('cnonce')}:auth:{ha2}"
    else:
        material = f"{ha1}:{nonce}:{ha2}"
    expected = hashlib.md5(material.encode(), usedforsecurity=False).hexdigest()
    return params.get("response") == expected
