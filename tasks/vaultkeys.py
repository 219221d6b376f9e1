"""The backup vault's credentials, derived from one master secret (BACKUP_VAULT_SECRET), so .env
keeps one value and every run computes the same bytes (the deploy stays idempotent):

- each n8n server's password for its own account on the vault's REST server (restic's
  rest-server, `--private-repos`: the account reaches only the repository of its name);
- the vault's htpasswd line for it: bcrypt with a salt derived too (a random salt would
  rewrite the file on every run);
- the vault's TLS key (Ed25519) and a self-signed certificate naming the addresses the n8n
  servers use; the n8n servers trust exactly that certificate (restic --cacert).

Each value comes from its own HMAC label (domain separation): knowing one (an n8n server holds
its password) tells nothing of the others or of the master. The vault holds the key and the
hashes, never the master; the n8n servers hold their own password and the certificate."""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
from datetime import UTC, datetime

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# the password is 256 random bits: no cost factor makes it guessable or not; 8 keeps the
# rest-server's check of each request cheap
BCRYPT_COST = 8
NOT_BEFORE = datetime(2026, 1, 1, tzinfo=UTC)  # fixed: the same certificate on every run
NOT_AFTER = datetime(2126, 1, 1, tzinfo=UTC)  # the master's rotation replaces it, not a date

_STD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_BCRYPT = b"./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def _derive(master: str, label: str) -> bytes:
    return hmac.new(master.encode(), f"mottivme-vault:{label}".encode(), hashlib.sha256).digest()


def password(master: str, account: str) -> str:
    """The REST server password of `account` (an n8n server's inventory name)."""
    return _derive(master, f"password:{account}").hex()


def stable_bcrypt(password: str, salt_from: str, label: str, cost: int = BCRYPT_COST) -> str:
    """bcrypt of `password` with a salt derived from `salt_from` and `label`: the same hash on
    every run (a random salt would rewrite its file on every deploy)."""
    raw = base64.b64encode(_derive(salt_from, f"salt:{label}")[:16]).rstrip(b"=")  # 22 characters
    salt = b"$2b$%02d$" % cost + raw.translate(bytes.maketrans(_STD, _BCRYPT))
    return bcrypt.hashpw(password.encode(), salt).decode()


def htpasswd_line(master: str, account: str) -> str:
    """`account:$2b$...` for the rest-server's htpasswd file, the same on every run."""
    return f"{account}:{stable_bcrypt(password(master, account), master, account)}"


def htpasswd(master: str, accounts: list[str]) -> str:
    return "".join(htpasswd_line(master, a) + "\n" for a in sorted(set(accounts)))


def _san(address: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(address))
    except ValueError:
        return x509.DNSName(address)


def tls(master: str, addresses: list[str]) -> tuple[str, str]:
    """(key PEM, certificate PEM) of the vault's REST server. Ed25519 signatures are
    deterministic, so the certificate's bytes only change with the master or the addresses."""
    key = Ed25519PrivateKey.from_private_bytes(_derive(master, "tls-key"))
    addresses = sorted(set(addresses))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "mottivme backup vault")])
    serial = int.from_bytes(_derive(master, "tls-serial:" + ",".join(addresses))[:16], "big") >> 1
    cert = (x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(serial).not_valid_before(NOT_BEFORE).not_valid_after(NOT_AFTER)
            .add_extension(x509.SubjectAlternativeName([_san(a) for a in addresses]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, None))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return key_pem, cert.public_bytes(serialization.Encoding.PEM).decode()


def repository_url(address: str, port: int, account: str) -> str:
    """The vault repository of `account` as restic names it, without the password (what logs and
    reports show; mottivme_host/restic.py adds the password from its file for restic only)."""
    host = f"[{address}]" if ":" in address else address
    return f"rest:https://{account}@{host}:{port}/{account}/"
