"""Signing keys for SMART Backend Services: generate a key pair, load a PEM, name a key by its thumbprint.

A SMART client signs its token requests with a private key whose public half the EHR holds as a JWK (registered
by hand or served from a JWKS URL). RS384 uses a 2048-bit RSA key, ES384 an EC key on P-384. The default key id
is the RFC 7638 thumbprint of the public JWK, so the ``kid`` we sign with and the one we hand out for
registration agree without anyone choosing a name. Errors: `ValueError` for a key that does not fit the
algorithm; callers at the package boundary translate it.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

__all__ = ["SigningAlg", "SigningKey", "generate_keypair", "load_signing_key", "public_jwk", "thumbprint"]

SigningAlg = Literal["RS384", "ES384"]
SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

_RSA_BITS = 2048


def generate_keypair(alg: SigningAlg = "RS384") -> tuple[str, dict[str, Any]]:
    """A new private key as unencrypted PKCS#8 PEM and its public JWK (with ``alg``, ``use`` and ``kid``).

    Register the JWK (or a JWKS holding it) with the EHR; keep the PEM secret.
    """
    key: SigningKey
    if alg == "RS384":
        key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_BITS)
    elif alg == "ES384":
        key = ec.generate_private_key(ec.SECP384R1())
    else:
        raise ValueError(f"unsupported SMART signing algorithm {alg!r}; use RS384 or ES384")
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    return pem, public_jwk(key, alg)


def load_signing_key(pem: str, alg: SigningAlg) -> SigningKey:
    """Parse an unencrypted PEM private key and check that it can sign with ``alg``.

    The error message never quotes the key.
    """
    try:
        key = serialization.load_pem_private_key(pem.encode("utf-8"), password=None)
    except (ValueError, TypeError) as exc:
        raise ValueError("the private key is not an unencrypted PEM private key") from exc
    if alg == "RS384" and isinstance(key, rsa.RSAPrivateKey):
        return key
    if alg == "ES384" and isinstance(key, ec.EllipticCurvePrivateKey) and isinstance(key.curve, ec.SECP384R1):
        return key
    raise ValueError(f"the private key does not fit {alg} (RS384 needs an RSA key, ES384 an EC P-384 key)")


def public_jwk(key: SigningKey, alg: SigningAlg) -> dict[str, Any]:
    """The public JWK of a private key, with ``kid`` set to its RFC 7638 thumbprint."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = json.loads(RSAAlgorithm.to_jwk(public))
    else:
        jwk = json.loads(ECAlgorithm.to_jwk(public))
    jwk.update({"alg": alg, "use": "sig", "key_ops": ["verify"]})
    jwk["kid"] = thumbprint(jwk)
    return jwk


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public RSA or EC JWK (base64url, no padding)."""
    if jwk["kty"] == "RSA":
        members = {"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}
    elif jwk["kty"] == "EC":
        members = {"crv": jwk["crv"], "kty": "EC", "x": jwk["x"], "y": jwk["y"]}
    else:
        raise ValueError(f"unsupported JWK key type {jwk['kty']!r}")
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode("ascii")
