"""tasks/vaultkeys.py: the vault's credentials derived from one master - the same bytes on every
run (the deploy stays idempotent), each value independent of the others."""

import ipaddress

import bcrypt
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tasks import vaultkeys

MASTER = "0123456789abcdef" * 4


def test_each_server_gets_its_own_password_the_same_on_every_run():
    a, b = vaultkeys.password(MASTER, "n8n-1"), vaultkeys.password(MASTER, "n8n-2")
    assert a == vaultkeys.password(MASTER, "n8n-1") and a != b and len(a) == 64 and int(a, 16) >= 0
    assert vaultkeys.password(MASTER[::-1], "n8n-1") != a  # another master, other passwords
    assert MASTER not in a


def test_the_htpasswd_lines_check_each_servers_password_and_no_other():
    text = vaultkeys.htpasswd(MASTER, ["n8n-2", "n8n-1", "n8n-1"])
    assert text == vaultkeys.htpasswd(MASTER, ["n8n-1", "n8n-2"])  # stable: no random salt, sorted, once each
    lines = dict(line.split(":", 1) for line in text.splitlines())
    assert list(lines) == ["n8n-1", "n8n-2"]
    assert lines["n8n-1"].startswith(f"$2b${vaultkeys.BCRYPT_COST:02d}$")
    assert bcrypt.checkpw(vaultkeys.password(MASTER, "n8n-1").encode(), lines["n8n-1"].encode())
    assert not bcrypt.checkpw(vaultkeys.password(MASTER, "n8n-2").encode(), lines["n8n-1"].encode())
    assert lines["n8n-1"][7:29] != lines["n8n-2"][7:29]  # salts differ per account


def test_the_vault_certificate_is_self_signed_for_its_addresses_and_stable():
    key_pem, cert_pem = vaultkeys.tls(MASTER, ["10.0.0.5", "vault.example.test", "10.0.0.5"])
    assert (key_pem, cert_pem) == vaultkeys.tls(MASTER, ["vault.example.test", "10.0.0.5"])
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.5")]
    assert san.get_values_for_type(x509.DNSName) == ["vault.example.test"]
    cert.verify_directly_issued_by(cert)  # self-signed: it is its own (and restic's only) authority
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == \
        cert.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    # another address or another master: another certificate
    assert vaultkeys.tls(MASTER, ["10.0.0.6"])[1] != cert_pem
    assert vaultkeys.tls(MASTER[::-1], ["10.0.0.5", "vault.example.test"])[0] != key_pem


def test_the_repository_url_names_the_account_and_never_the_password():
    url = vaultkeys.repository_url("10.0.0.5", 8000, "n8n-1")
    assert url == "rest:https://n8n-1@10.0.0.5:8000/n8n-1/"
    assert vaultkeys.password(MASTER, "n8n-1") not in url
    assert vaultkeys.repository_url("fd00::5", 8000, "n8n-1") == "rest:https://n8n-1@[fd00::5]:8000/n8n-1/"
