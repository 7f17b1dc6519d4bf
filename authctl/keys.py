"""Signing keys: generate, import, fingerprint, publish (JWKS) and parse once.

Every key has a ``kid`` and exactly one algorithm. Verifiers take the algorithm
from the key, never from a token's header (RFC 8725 §3.1), so a key can only
ever be used the way it was created for. Parsed key objects live in a
``KeyRing`` that is cached per database and key-set version: PEM is parsed once,
not on every request.

Private material (PEM, HMAC secrets) never appears in a message, a ``repr`` or
the JWK Set.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from .clock import utcnow
from .errors import InvalidInput, NotFound
from .jose import b64url_encode
from .store import KeyStatus, SigningKey

if TYPE_CHECKING:
    from jwt.algorithms import Algorithm

    from .store import Store

DEFAULT_ALG = "ES256"
# Offered by `init` / `key rotate` (the CLI's choices, pinned equal by tests/test_cli_conventions.py);
# the others are import-only so that authctl can mint tokens an existing app already accepts.
GENERATED_ALGS = ("ES256", "EdDSA", "RS256", "HS256")
SUPPORTED_ALGS = (
    "ES256", "ES384", "ES512", "EdDSA", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
    "HS256", "HS384", "HS512",
)
RSA_DEFAULT_BITS = 3072
RSA_MIN_BITS = 2048
# RFC 7518 §3.2: an HMAC key at least as long as the hash output.
HMAC_MIN_BYTES = {"HS256": 32, "HS384": 48, "HS512": 64}
# RFC 8725 §3.5: keys must have enough entropy; 128 bits is the smallest security strength
# NIST SP 800-57 accepts. Estimated by ``secret_entropy_bits``.
HMAC_MIN_ENTROPY_BITS = 128
_EC_CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
_KID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Members of a JWK that are private (RFC 7518 §6.2.2, §6.3.2, §6.4.1; RFC 8037).
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def normalize_alg(name: str) -> str:
    """The canonical spelling of a supported algorithm; ``none`` is never one."""
    wanted = str(name).strip()
    for alg in SUPPORTED_ALGS:
        if alg.lower() == wanted.lower():
            return alg
    raise InvalidInput(f"unsupported algorithm {wanted[:20]!r}: use one of {', '.join(SUPPORTED_ALGS)}")


def is_symmetric(alg: str) -> bool:
    return alg.startswith("HS")


_ALGORITHMS: dict[str, "Algorithm"] = {}


def algorithm(alg: str) -> "Algorithm":
    """PyJWT's implementation of one algorithm (shared instances: they are stateless)."""
    found = _ALGORITHMS.get(alg)
    if found is None:
        from jwt.algorithms import get_default_algorithms

        _ALGORITHMS.update({name: obj for name, obj in get_default_algorithms().items() if name in SUPPORTED_ALGS})
        found = _ALGORITHMS[alg]
    return found


def validate_kid(kid: str) -> str:
    if not _KID.match(kid):
        raise InvalidInput("invalid kid: use 1-64 characters from A-Z, a-z, 0-9, '.', '_' and '-'")
    return kid


def new_kid(alg: str) -> str:
    return f"{alg.lower()}-{secrets.token_hex(6)}"


# --------------------------------------------------------------------------- key material


def _public_of(key: Any) -> Any:
    return key.public_key() if hasattr(key, "public_key") else key


def check_strength(alg: str, key: Any) -> None:
    """Refuse weak keys with the reason: short HMAC secrets, small RSA, the wrong curve or type."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if is_symmetric(alg):
        if not isinstance(key, (bytes, bytearray)):
            raise InvalidInput(f"{alg} needs a shared secret, not a private key")
        minimum = HMAC_MIN_BYTES[alg]
        if len(key) < minimum:
            raise InvalidInput(
                f"the {alg} secret is {len(key)} bytes; at least {minimum} random bytes are required (RFC 7518 §3.2)"
            )
        bits = secret_entropy_bits(bytes(key))
        if bits < HMAC_MIN_ENTROPY_BITS:
            raise InvalidInput(
                f"the {alg} secret is not random enough: about {bits:.0f} bits of entropy by estimate, at least "
                f"{HMAC_MIN_ENTROPY_BITS} required (RFC 8725 §3.5); make one with `openssl rand -base64 {minimum}`"
            )
        return
    if alg.startswith(("RS", "PS")):
        if not isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
            raise InvalidInput(f"{alg} needs an RSA key, got {_describe(key)}")
        if key.key_size < RSA_MIN_BITS:
            raise InvalidInput(f"the RSA key has {key.key_size} bits; {alg} needs at least {RSA_MIN_BITS}")
        return
    if alg.startswith("ES"):
        if not isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
            raise InvalidInput(f"{alg} needs an elliptic-curve key, got {_describe(key)}")
        if key.curve.name != _EC_CURVES[alg]:
            raise InvalidInput(f"the key is on curve {key.curve.name}, but {alg} requires {_EC_CURVES[alg]}")
        return
    if alg == "EdDSA":
        allowed = (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey, ed448.Ed448PrivateKey, ed448.Ed448PublicKey)
        if not isinstance(key, allowed):
            raise InvalidInput(f"EdDSA needs an Ed25519 or Ed448 key, got {_describe(key)}")
        return
    raise InvalidInput(f"unsupported algorithm {alg!r}")


def secret_entropy_bits(data: bytes) -> float:
    """An upper estimate of a secret's entropy in bits: the least of three views of it.

    Byte frequencies (32 x 'a', few distinct bytes), the differences between
    neighbouring bytes (runs such as ``abcdef…`` or ``0123…``), and what zlib
    leaves of it (a short pattern repeated, 1 MiB of zeros). Random bytes score
    near their length in bits on the last view and about ``n * log2(n)`` on the
    others.
    """
    import math
    import zlib
    from collections import Counter

    def shannon(values: bytes) -> float:
        total = len(values)
        return -sum(count / total * math.log2(count / total) for count in Counter(values).values()) * total

    if not data:
        return 0.0
    deltas = bytes((b - a) & 0xFF for a, b in zip(data, data[1:]))
    compressed = 8 * max(0, len(zlib.compress(data, 9)) - len(zlib.compress(b"", 9)))
    return max(0.0, min(shannon(data), 8 + shannon(deltas), float(compressed)))


def _describe(key: Any) -> str:
    from .keyformats import describe

    return "a shared secret" if isinstance(key, (bytes, bytearray)) else describe(key)


def infer_alg(key: Any) -> str:
    """The natural algorithm for a key when none is given (RSA: RS256; EC: by curve)."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if isinstance(key, (bytes, bytearray)):
        return "HS256"
    if isinstance(key, (rsa.RSAPrivateKey, rsa.RSAPublicKey)):
        return "RS256"
    if isinstance(key, (ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey)):
        for alg, curve in _EC_CURVES.items():
            if key.curve.name == curve:
                return alg
        raise InvalidInput(f"unsupported curve {key.curve.name}: use P-256, P-384 or P-521")
    if isinstance(key, (ed25519.Ed25519PrivateKey, ed25519.Ed25519PublicKey, ed448.Ed448PrivateKey, ed448.Ed448PublicKey)):
        return "EdDSA"
    raise InvalidInput(f"unsupported key type: {_describe(key)}")


def public_jwk(alg: str, key: Any, kid: str) -> dict[str, Any]:
    """The public JWK of a key; for a shared secret only the metadata (no ``k``)."""
    if is_symmetric(alg):
        return {"kty": "oct", "kid": kid, "alg": alg, "use": "sig"}
    jwk = algorithm(alg).to_jwk(_public_of(key), as_dict=True)
    # "use" says it all; RFC 7517 §4.3: use and key_ops should not appear together.
    jwk = {name: value for name, value in jwk.items() if name not in PRIVATE_JWK_MEMBERS and name != "key_ops"}
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    return jwk


def fingerprint(alg: str, key: Any) -> str:
    """A public fingerprint: the RFC 7638 JWK thumbprint (SHA-256), or a one-way hash of a secret."""
    if is_symmetric(alg):
        digest = hashlib.sha256(b"authctl hmac key fingerprint\x00" + bytes(key)).digest()
        return "hmac:" + b64url_encode(digest)[:22]
    jwk = algorithm(alg).to_jwk(_public_of(key), as_dict=True)
    required = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y"), "OKP": ("crv", "kty", "x")}[jwk["kty"]]
    canonical = json.dumps({name: jwk[name] for name in required}, separators=(",", ":"), sort_keys=True)
    return "sha256:" + b64url_encode(hashlib.sha256(canonical.encode()).digest())


def _pem_of(key: Any) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _record(alg: str, key: Any, kid: str | None, status: "KeyStatus") -> SigningKey:
    check_strength(alg, key)
    kid = validate_kid(kid) if kid else new_kid(alg)
    material = bytes(key) if is_symmetric(alg) else _pem_of(key)
    return SigningKey(
        kid=kid, alg=alg, status=status, created_at=utcnow(), retired_at=None,
        fingerprint=fingerprint(alg, key), public_jwk=public_jwk(alg, key, kid), private_material=material,
    )


def generate(alg: str = DEFAULT_ALG, *, rsa_bits: int = RSA_DEFAULT_BITS, kid: str | None = None) -> SigningKey:
    """A fresh key: ES256 by default (apps verify with the public key alone)."""
    alg = normalize_alg(alg)
    if is_symmetric(alg):
        key: Any = secrets.token_bytes(HMAC_MIN_BYTES[alg])
    elif alg.startswith(("RS", "PS")):
        from cryptography.hazmat.primitives.asymmetric import rsa

        if rsa_bits < RSA_MIN_BITS:
            raise InvalidInput(f"RSA keys need at least {RSA_MIN_BITS} bits")
        key = rsa.generate_private_key(public_exponent=65537, key_size=rsa_bits)
    elif alg.startswith("ES"):
        from cryptography.hazmat.primitives.asymmetric import ec

        curves: dict[str, Callable[[], ec.EllipticCurve]] = {"ES256": ec.SECP256R1, "ES384": ec.SECP384R1, "ES512": ec.SECP521R1}
        curve = curves[alg]()
        key = ec.generate_private_key(curve)
    else:
        from cryptography.hazmat.primitives.asymmetric import ed25519

        key = ed25519.Ed25519PrivateKey.generate()
    return _record(alg, key, kid, "active")


def load_private_pem(data: bytes) -> Any:
    """A stored private key (PKCS#8 PEM); the reason on failure, never the material."""
    from cryptography.hazmat.primitives import serialization

    try:
        return serialization.load_pem_private_key(data, password=None)
    except Exception:  # cryptography reports bad PEM as ValueError or UnsupportedAlgorithm
        raise InvalidInput("not a readable PEM private key (PKCS#8, PKCS#1 or SEC1)") from None


def import_key(data: bytes, *, alg: str | None = None, kid: str | None = None, activate: bool = True,
               hmac: bool = False) -> SigningKey:
    """A key record from a private key (PEM, DER, JWK or OpenSSH), or a raw HMAC secret with ``hmac``.

    Public keys and certificates, in any form, are refused: they are never a secret
    (RFC 8725 §2.1). Raw bytes are a secret only when ``hmac`` says so, never by guess.
    """
    from .keyformats import PRIVATE, SECRET, recognise

    alg = normalize_alg(alg) if alg else None
    material = recognise(data)
    if hmac:
        if alg is not None and not is_symmetric(alg):
            raise InvalidInput(f"--hmac takes HS256, HS384 or HS512, not {alg}")
        if material is not None and material.kind != SECRET:
            raise InvalidInput(f"this is {material.label}, not a shared secret: key material is never an HMAC secret")
    if material is None:
        if not hmac:
            raise InvalidInput("not a private key authctl recognises (PEM, DER, JWK or OpenSSH)", hint="hmac")
        key: Any = data.rstrip(b"\r\n")
        if not key:
            raise InvalidInput("the secret is empty")
        return _record(alg or "HS256", key, kid, "active" if activate else "verifying")
    if material.kind == SECRET:  # an oct JWK declares itself a shared secret
        alg = _agreed_alg(alg, material.alg)
        if alg is not None and not is_symmetric(alg):
            raise InvalidInput(f"{alg} needs a private key, but this is {material.label}")
        return _record(alg or "HS256", material.key, kid, "active" if activate else "verifying")
    if material.kind != PRIVATE:
        raise InvalidInput(f"this is {material.label}; signing needs the private key")
    if material.key is None:
        raise InvalidInput(f"this is {material.label}")
    alg = _agreed_alg(alg, material.alg)
    if alg is not None and is_symmetric(alg):
        raise InvalidInput(f"{alg} needs a shared secret, but this is {material.label}")
    alg = alg or infer_alg(material.key)
    return _record(alg, material.key, kid, "active" if activate else "verifying")


def _agreed_alg(given: str | None, declared: str | None) -> str | None:
    """--alg and the algorithm a JWK declares must be the same one."""
    if declared is None:
        return given
    declared = normalize_alg(declared)
    if given is not None and given != declared:
        raise InvalidInput(f"alg {given} contradicts the key's own alg {declared}")
    return declared


def jwks(records: Iterable[SigningKey]) -> dict[str, Any]:
    """The public JWK Set: keys that still verify, asymmetric only, no private member."""
    keys = []
    for record in records:
        if record.status == "retired" or is_symmetric(record.alg):
            continue
        keys.append({name: value for name, value in record.public_jwk.items() if name not in PRIVATE_JWK_MEMBERS})
    return {"keys": keys}


# --------------------------------------------------------------------------- parsed keys


@dataclass(frozen=True)
class LoadedKey:
    """A parsed key: its one algorithm and the key objects PyJWT's algorithms take."""

    kid: str
    alg: str
    status: "KeyStatus"
    verify_key: Any = field(repr=False)
    sign_key: Any = field(default=None, repr=False)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        try:
            return bool(algorithm(self.alg).verify(signing_input, self.verify_key, signature))
        except Exception:  # a malformed signature is a failed signature, never a crash
            return False

    def sign(self, signing_input: bytes) -> bytes:
        if self.sign_key is None:
            raise NotFound(f"key {self.kid!r} cannot sign (public key only)")
        return algorithm(self.alg).sign(signing_input, self.sign_key)


def load(record: SigningKey, *, with_private: bool = True) -> LoadedKey:
    """Parse one stored key (PEM or secret) into key objects."""
    if is_symmetric(record.alg):
        secret = bytes(record.private_material)
        return LoadedKey(record.kid, record.alg, record.status, secret, secret if with_private else None)
    private = load_private_pem(record.private_material)
    return LoadedKey(record.kid, record.alg, record.status, private.public_key(), private if with_private else None)


class KeyRing:
    """The keys a verifier knows, by kid. ``any_kid``: one foreign key that matches any kid."""

    def __init__(self, loaded: Iterable[LoadedKey], records: Iterable[SigningKey] = (), *, any_kid: bool = False,
                 source: str = "database"):
        self.by_kid: dict[str, LoadedKey] = {key.kid: key for key in loaded}
        self.records: dict[str, SigningKey] = {record.kid: record for record in records}
        self.any_kid = any_kid
        self.source = source
        self.active = next((key for key in self.by_kid.values() if key.status == "active"), None)
        self._retired: dict[str, LoadedKey] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.by_kid)

    def lookup(self, kid: Any) -> LoadedKey | None:
        """The key for a token's kid: only keys that still verify (active or verifying)."""
        if self.any_kid and len(self.by_kid) == 1 and (kid is None or kid not in self.by_kid):
            return next(iter(self.by_kid.values()))
        return self.by_kid.get(kid) if isinstance(kid, str) else None

    def retired(self, kid: Any) -> LoadedKey | None:
        """A retired key, parsed on demand (only ``inspect`` asks, to explain)."""
        if not isinstance(kid, str):
            return None
        record = self.records.get(kid)
        if record is None or record.status != "retired":
            return None
        with self._lock:
            if kid not in self._retired:
                self._retired[kid] = load(record, with_private=False)
        return self._retired[kid]

    @classmethod
    def from_records(cls, records: Iterable[SigningKey]) -> "KeyRing":
        records = list(records)
        loaded = [load(record) for record in records if record.status != "retired"]
        return cls(loaded, records)

    @classmethod
    def for_store(cls, store: "Store") -> "KeyRing":
        """The cached ring of a database; rebuilt only when its key set changes."""
        cache_key = (str(store.path.resolve()), store.keys_version())
        ring = _RINGS.get(cache_key)
        if ring is None:
            ring = cls.from_records(store.keys())
            with _RINGS_LOCK:
                if len(_RINGS) >= 64:
                    _RINGS.clear()
                _RINGS[cache_key] = ring
        return ring


_RINGS: dict[tuple[str, int], KeyRing] = {}
_RINGS_LOCK = threading.Lock()


# --------------------------------------------------------------------------- foreign keys


def foreign_pem(data: bytes, alg: str | None = None) -> KeyRing:
    """A ring of one foreign public key (PEM, DER, JWK, OpenSSH or a certificate's) that verifies any kid.

    A private key is refused: verifying needs only the public key, and a private key
    handed to a verifier is one copy too many.
    """
    from .keyformats import CERTIFICATE, PRIVATE, PUBLIC, SECRET, recognise

    material = recognise(data)
    if material is None:
        raise InvalidInput("verifying needs a public key or certificate (PEM, DER, JWK or OpenSSH)",
                           hint="secret_stdin")
    if material.kind == PRIVATE:
        raise InvalidInput(f"this is {material.label}; verifying takes the public key only "
                           "(e.g. `openssl pkey -pubout -in KEY`)")
    if material.kind not in (PUBLIC, CERTIFICATE) or material.key is None:
        raise InvalidInput(f"this is {material.label}, not a public key authctl can verify with",
                           hint="secret_stdin" if material.kind == SECRET else None)
    key = material.key
    alg = _agreed_alg(normalize_alg(alg) if alg else None, material.alg) or infer_alg(key)
    if is_symmetric(alg):
        raise InvalidInput(f"{alg} needs a shared secret, not {material.label}", hint="secret_stdin")
    check_strength(alg, key)
    return KeyRing([LoadedKey("(--key)", alg, "verifying", key)], any_kid=True, source="--key")


def foreign_secret(secret: bytes, alg: str | None = None) -> KeyRing:
    """A ring of one foreign HMAC secret (verifies tokens of any kid): raw bytes or an oct JWK's key;
    other key material is never one."""
    from .keyformats import SECRET, recognise

    given = normalize_alg(alg) if alg else None
    if given is not None and not is_symmetric(given):
        raise InvalidInput(f"{given} is not an HMAC algorithm: a shared secret takes HS256, HS384 or HS512")
    secret = secret.rstrip(b"\r\n")
    if not secret:
        raise InvalidInput("no secret on stdin")
    material = recognise(secret)
    if material is not None:
        if material.kind != SECRET:
            raise InvalidInput(f"this is {material.label}, not a shared secret", hint="public_keys")
        given = _agreed_alg(given, material.alg)  # an oct JWK declares itself a secret, as in import_key
        if given is not None and not is_symmetric(given):
            raise InvalidInput(f"{given} is not an HMAC algorithm, but this is {material.label}")
        secret = material.key
    alg = given or "HS256"
    check_strength(alg, secret)
    return KeyRing([LoadedKey("(--secret-stdin)", alg, "verifying", secret)], any_kid=True, source="--secret-stdin")


def foreign_jwks(text: str | bytes) -> KeyRing:
    """A ring from a public JWK Set; each key keeps the algorithm it declares (or its type's default).

    Shared secrets and private members are refused: a JWK Set is public material.
    """
    from jwt import PyJWK

    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise InvalidInput("the JWK Set is not valid JSON") from None
    entries = document.get("keys") if isinstance(document, Mapping) else None
    if not isinstance(entries, list) or not entries:
        raise InvalidInput('the JWK Set has no "keys" list')
    loaded: list[LoadedKey] = []
    kidless = False
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or entry.get("use", "sig") != "sig":
            continue
        if entry.get("kty") == "oct":
            raise InvalidInput(f"key #{index + 1} of the JWK Set is a shared secret (kty oct): a JWK Set is "
                               "public material", hint="secret_stdin_hmac")
        if PRIVATE_JWK_MEMBERS & set(entry):
            raise InvalidInput(f"key #{index + 1} of the JWK Set has private members; verifying needs "
                               "only the public key (publish `authctl key jwks`, never private members)")
        try:
            jwk = PyJWK(dict(entry))
            alg = normalize_alg(jwk.algorithm_name)
        except Exception:  # PyJWT's messages may quote the key (private members): say only where
            raise InvalidInput(f"key #{index + 1} of the JWK Set is not a usable signing key") from None
        key = jwk.key
        check_strength(alg, key)
        kid = entry.get("kid") if isinstance(entry.get("kid"), str) else None
        kidless = kidless or kid is None
        kid = kid or f"#{index + 1}"
        loaded.append(LoadedKey(kid, alg, "verifying", key))
    if not loaded:
        raise InvalidInput("the JWK Set holds no signing keys")
    return KeyRing(loaded, any_kid=len(loaded) == 1 and kidless, source="--jwks")
