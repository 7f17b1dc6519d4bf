"""What a blob of key material is, in every common encoding.

A public key or certificate must never be mistaken for a raw HMAC secret: whoever
holds the public file could then mint any token (the HS256-with-the-public-key
confusion, RFC 8725 §2.1). ``recognise`` finds keys and certificates wherever they
are in the input, so that callers refuse them for signing and only take raw bytes
as a secret when told so explicitly.

Recognised: PEM blocks anywhere in the text (`openssl x509 -text` output, bag
attributes); DER (PKCS#8, PKCS#1, SEC1, SubjectPublicKeyInfo, X.509 certificates
and requests, and any other well-formed ASN.1 SEQUENCE such as PKCS#7 or PKCS#12);
the base64 body of such DER; OpenSSH public keys (authorized_keys lines, RFC 4716),
OpenSSH and PuTTY private keys; JWK and JWK Set JSON.

Messages name what was recognised, never the material.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from .errors import InvalidInput

PRIVATE = "private"
PUBLIC = "public"
CERTIFICATE = "certificate"
SECRET = "secret"  # a JWK of kty "oct": a shared secret that says so
OTHER = "other"  # key-related structure that is no usable key (parameters, CRL, PKCS#7, ...)

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 #./-]{1,60})-----(.*?)(?:-----END \1-----|\Z)", re.DOTALL)
_SSH_PUBLIC = re.compile(
    rb"(?:^|\s)((?:ssh|ecdsa|sk|rsa)-[A-Za-z0-9@.+-]{1,80})\s+(AAAA[A-Za-z0-9+/]+={0,2})", re.MULTILINE
)
_SSH2_PUBLIC = b"---- BEGIN SSH2 PUBLIC KEY ----"
_PUTTY = b"PuTTY-User-Key-File-"
_BASE64 = re.compile(rb"^[A-Za-z0-9+/_-]+={0,2}$")
_JWK_PRIVATE = ("d", "p", "q", "dp", "dq", "qi", "oth")


@dataclass(frozen=True)
class Material:
    """Recognised key material: its kind, its encoding, and the key when it could be read."""

    kind: str
    form: str
    what: str
    key: Any = field(default=None, repr=False)
    alg: str | None = None  # the algorithm a JWK declares

    @property
    def label(self) -> str:
        return f"{self.what} in {self.form} form"


def recognise(data: bytes) -> Material | None:
    """The key or certificate material in ``data``, or None when it is none of the known forms."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    found = _pem(data)
    if found is None:
        found = _jwk_text(data) or _ssh(data) or _der(data, "DER") or _base64_der(data)
    return found


# --------------------------------------------------------------------------- descriptions


def describe(key: Any, kind: str = "") -> str:
    """'an RSA public key (2048 bits)', 'an Ed25519 private key', ... (no material)."""
    from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa, x448, x25519

    suffix = f" {kind} key" if kind else " key"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return f"an RSA{suffix} ({key.key_size} bits)"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        return f"an EC{suffix} on {key.curve.name}"
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey)):
        return f"an Ed25519{suffix}"
    if isinstance(key, (ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return f"an Ed448{suffix}"
    if isinstance(key, (dsa.DSAPrivateKey, dsa.DSAPublicKey)):
        return f"a DSA{suffix}"
    if isinstance(key, (x25519.X25519PrivateKey, x25519.X25519PublicKey, x448.X448PrivateKey, x448.X448PublicKey)):
        return f"an X25519/X448 (key agreement){suffix}"
    return f"a{suffix.lstrip()}" if kind else "a key"


def _private(key: Any, form: str, alg: str | None = None) -> Material:
    return Material(PRIVATE, form, describe(key, "private"), key, alg)


def _public(key: Any, form: str, alg: str | None = None) -> Material:
    return Material(PUBLIC, form, describe(key, "public"), key, alg)


def _certificate(cert: Any, form: str) -> Material:
    try:
        key = cert.public_key()
    except Exception:  # an algorithm cryptography cannot load: still a certificate
        return Material(CERTIFICATE, form, "an X.509 certificate")
    return Material(CERTIFICATE, form, f"an X.509 certificate for {describe(key, 'public')}", key)


# --------------------------------------------------------------------------- PEM


def _pem(data: bytes) -> Material | None:
    blocks = [(m.group(1).decode("ascii"), m.group(0)) for m in _PEM.finditer(data)]
    if not blocks:
        if b"-----BEGIN " in data:
            return Material(OTHER, "PEM", "a PEM block")
        return None
    found = [_pem_block(label, block) for label, block in blocks if label != "EC PARAMETERS"]
    if not found:
        return Material(OTHER, "PEM", "EC parameters (no key)")
    private = [m for m in found if m.kind == PRIVATE]
    if len(private) > 1 or (not private and len(found) > 1):
        raise InvalidInput(f"the input holds {len(found)} PEM keys or certificates; give exactly one key")
    # a private key with its certificate chain is the private key
    return private[0] if private else found[0]


def _pem_block(label: str, block: bytes) -> Material:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if "PRIVATE KEY" in label:
        if "ENCRYPTED" in label or b"Proc-Type: 4,ENCRYPTED" in block:
            raise InvalidInput("the private key is encrypted; decrypt it first (e.g. `openssl pkey -in KEY`)")
        try:
            if label == "OPENSSH PRIVATE KEY":
                return _private(serialization.load_ssh_private_key(block, password=None), "OpenSSH")
            return _private(serialization.load_pem_private_key(block, password=None), "PEM")
        except TypeError:
            raise InvalidInput("the private key is encrypted; decrypt it first (e.g. `openssl pkey -in KEY`)") from None
        except Exception:  # ValueError or UnsupportedAlgorithm; never quote the block
            return Material(PRIVATE, "PEM", "an unreadable private key")
    if "PUBLIC KEY" in label:
        try:
            return _public(serialization.load_pem_public_key(block), "PEM")
        except Exception:
            unreadable = label in ("PUBLIC KEY", "RSA PUBLIC KEY")
            return Material(PUBLIC, "PEM", "an unreadable public key" if unreadable else f"a {label.lower()}")
    if "CERTIFICATE" in label:
        if "REQUEST" in label:
            try:
                return Material(PUBLIC, "PEM", "a certificate signing request for "
                                + describe(x509.load_pem_x509_csr(block).public_key(), "public"))
            except Exception:
                return Material(PUBLIC, "PEM", "a certificate signing request")
        try:
            return _certificate(x509.load_pem_x509_certificate(block), "PEM")
        except Exception:
            return Material(CERTIFICATE, "PEM", "an X.509 certificate")
    return Material(OTHER, "PEM", f"a PEM {label.lower()} block")


# --------------------------------------------------------------------------- JWK


def _jwk_text(data: bytes) -> Material | None:
    text = data.strip()
    if not text.startswith(b"{"):
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(document, Mapping):
        return None
    if isinstance(document.get("keys"), list):
        entries = [entry for entry in document["keys"] if isinstance(entry, Mapping)]
        if len(entries) != 1:
            raise InvalidInput(f"the JWK Set holds {len(entries)} keys; give exactly one")
        return jwk(entries[0], "JWK Set")
    if "kty" in document:
        return jwk(document, "JWK")
    return None


def jwk(entry: Mapping[str, Any], form: str = "JWK") -> Material:
    """One JWK: a shared secret (``oct``), a private key (private members) or a public key."""
    from jwt import PyJWK

    kty = entry.get("kty")
    alg = entry.get("alg") if isinstance(entry.get("alg"), str) else None
    key_ops = entry.get("key_ops")
    signs = not isinstance(key_ops, list) or bool({"sign", "verify"} & set(map(str, key_ops)))
    if entry.get("use", "sig") != "sig" or not signs:  # RFC 7517 §4.2-4.3: made for encryption
        return Material(OTHER, form, "a key for encryption, not signing (use/key_ops)")
    if kty == "oct":
        try:
            secret = base64.urlsafe_b64decode(str(entry.get("k", "")) + "=" * (-len(str(entry.get("k", ""))) % 4))
        except (binascii.Error, ValueError):
            secret = b""
        return Material(SECRET, form, "a shared secret (kty oct)", secret, alg)
    private = any(name in entry for name in _JWK_PRIVATE)
    kind = PRIVATE if private else PUBLIC
    try:
        key = PyJWK(dict(entry)).key
    except Exception:  # PyJWT's messages may quote members: say only what it is
        return Material(kind, form, f"an unreadable {kind} key", None, alg)
    return (_private if private else _public)(key, form, alg)


# --------------------------------------------------------------------------- OpenSSH, PuTTY


def _ssh(data: bytes) -> Material | None:
    from cryptography.hazmat.primitives import serialization

    if _PUTTY in data[:64]:
        return Material(PRIVATE, "PuTTY", "a PuTTY private key file (convert it: `puttygen KEY -O private-openssh`)")
    if _SSH2_PUBLIC in data:
        return Material(PUBLIC, "OpenSSH", "an SSH public key (RFC 4716)")
    match = _SSH_PUBLIC.search(data)
    if match is None:
        return None
    name, blob = match.group(1), match.group(2)
    try:
        key = serialization.load_ssh_public_key(name + b" " + blob)
    except Exception:  # certificates, FIDO keys, other types: still an SSH public key
        return Material(PUBLIC, "OpenSSH", f"an SSH public key ({name.decode('ascii', 'replace')[:40]})")
    return _public(key, "OpenSSH")


# --------------------------------------------------------------------------- DER


def _der(data: bytes, form: str) -> Material | None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not _is_der_sequence(data):
        return None
    try:
        return _private(serialization.load_der_private_key(data, password=None), form)
    except TypeError:
        raise InvalidInput("the private key is encrypted; decrypt it first (e.g. `openssl pkey -in KEY`)") from None
    except Exception:
        pass
    try:
        return _public(serialization.load_der_public_key(data), form)
    except Exception:
        pass
    try:
        return _certificate(x509.load_der_x509_certificate(data), form)
    except Exception:
        pass
    try:
        return Material(PUBLIC, form, "a certificate signing request for "
                        + describe(x509.load_der_x509_csr(data).public_key(), "public"))
    except Exception:
        pass
    return Material(OTHER, form, "an ASN.1 structure (PKCS#7, PKCS#12 or similar)")


def _is_der_sequence(data: bytes) -> bool:
    """A DER SEQUENCE spanning the whole input whose content is a run of well-formed elements."""
    end = _tlv_end(data, 0)
    if end is None or end != len(data) or data[:1] != b"\x30":
        return False
    start = _content_start(data, 0)
    position: int | None = start
    while position is not None and position < end:
        position = _tlv_end(data, position)
        if position is None or position > end:
            return False
    return position == end and end - start > 0


def _content_start(data: bytes, position: int) -> int:
    first = data[position + 1]
    return position + 2 + (first & 0x7F if first & 0x80 else 0)


def _tlv_end(data: bytes, position: int) -> int | None:
    """Where the element at ``position`` ends (definite lengths, low tag numbers), or None."""
    if position + 2 > len(data) or data[position] & 0x1F == 0x1F:
        return None
    first = data[position + 1]
    if first < 0x80:
        return position + 2 + first
    count = first & 0x7F
    if count == 0 or count > 4 or position + 2 + count > len(data):
        return None
    length = int.from_bytes(data[position + 2:position + 2 + count], "big")
    if length < 0x80 or (count > 1 and data[position + 2] == 0):  # DER uses the shortest form
        return None
    return position + 2 + count + length


def _base64_der(data: bytes) -> Material | None:
    compact = b"".join(data.split())
    if len(compact) < 16 or not _BASE64.match(compact):
        return None
    try:
        decoded = base64.b64decode(compact.replace(b"-", b"+").replace(b"_", b"/") + b"=" * (-len(compact) % 4))
    except (binascii.Error, ValueError):
        return None
    return _der(decoded, "base64 DER")
