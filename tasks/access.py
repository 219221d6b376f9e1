"""Who has access to the servers (SOP 05, "Controle de Acesso"), as data: group_data `people`.

Each person is a dict: `name`, `ssh_key` (their OpenSSH public key, one line), `state`
("present" or "absent"), an optional `email` (the access report; their n8n login) and an
optional `n8n` ("member": an n8n account, tasks/operations.n8n_users). The deploy puts every
present person's key in the servers' admin account (the inventory's ssh_user, root by default)
and takes every absent person's key out of it, on every server; a key is matched by its key
material (the base64 part), whatever its label, options or comment. Keys nobody is listed for are left alone (the deploy's own, a
provider's rescue key): `mottivme access` shows them as "not in group_data", so they can be
listed as someone's or removed by hand.

`problems()` checks the list before any host is contacted (tasks/config.py); `access_report()`
is the SOP's access table made real from each server's authorized_keys and each n8n server's
accounts (N8N_ACCOUNTS_SQL on n8n's own database).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import struct
from io import StringIO
from shlex import quote

from pyinfra import host
from pyinfra.api import operation
from pyinfra.facts.files import FileContents
from pyinfra.facts.server import Users
from pyinfra.operations import files

# the key types of a person's .pub file, with the number of length-prefixed fields its key holds
KEY_FIELDS = {"ssh-ed25519": 2, "ssh-rsa": 3, "ecdsa-sha2-nistp256": 3, "ecdsa-sha2-nistp384": 3,
              "ecdsa-sha2-nistp521": 3, "sk-ssh-ed25519@openssh.com": 3, "sk-ecdsa-sha2-nistp256@openssh.com": 4}
KEY_TYPES = tuple(KEY_FIELDS)
# what sshd also takes as an RSA key's label in authorized_keys
LABELS = (*KEY_TYPES, "rsa-sha2-256", "rsa-sha2-512")
STATES = ("present", "absent")
FIELDS = {"name", "email", "ssh_key", "state", "n8n"}
# the n8n accounts the deploy manages: members (n8n's admin role needs an Enterprise license, and
# the owner is N8N_OWNER_EMAIL, claimed by the deploy itself)
N8N_ROLES = {"member": "global:member"}
WHERE = "group_data people"
BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")


def _words(line: str) -> list[str]:
    """The words of an authorized_keys line after its options (`[options] type key [comment]`;
    the options end at the first blank outside double quotes); [] for a comment or a blank line."""
    line = line.strip()
    if not line or line.startswith("#"):
        return []
    if line.split()[0] in LABELS:
        return line.split()
    quoted, escaped = False, False
    for i, ch in enumerate(line):
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == '"':
            quoted = not quoted
        elif ch in " \t" and not quoted:
            return line[i:].split()
    return []


def key_material(line: str) -> tuple[str, str] | None:
    """(label, base64 key) of an authorized_keys line or a public key, or None when it holds none.
    A key is the same key whatever its label (ssh-rsa, rsa-sha2-512), options or comment: compare
    the base64 part."""
    words = _words(line)
    if len(words) >= 2 and words[0] in LABELS and BASE64.fullmatch(words[1]):
        return words[0], words[1]
    return None


def _every_key(line: str) -> set[str]:
    """Every key (base64 part) anywhere in a line, options and comment included: an absent key is
    taken off whatever a line wraps it in."""
    words = line.replace('"', " ").replace(",", " ").split()
    return {words[i + 1] for i, w in enumerate(words[:-1]) if w in LABELS and BASE64.fullmatch(words[i + 1])}


def _comment(line: str) -> str:
    return " ".join(_words(line)[2:])


def fingerprint(material: tuple[str, str]) -> str:
    """ssh-keygen -l's SHA256 fingerprint of a key."""
    digest = hashlib.sha256(base64.b64decode(material[1])).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def _fields(blob: bytes) -> list[bytes] | None:
    """A key's length-prefixed fields, or None when they do not fill it exactly."""
    out, i = [], 0
    while i < len(blob):
        if i + 4 > len(blob):
            return None
        (n,) = struct.unpack(">I", blob[i:i + 4])
        if i + 4 + n > len(blob):
            return None
        out.append(blob[i + 4:i + 4 + n])
        i += 4 + n
    return out


def _key_problem(value) -> str | None:
    if not isinstance(value, str) or "PRIVATE KEY" in value:
        return "must be an OpenSSH public key (the .pub file's one line); never a private key"
    if "\n" in value.strip() or "\r" in value:
        return "must be one line"
    words = value.split()
    if len(words) < 2 or words[0] not in KEY_TYPES:
        return f"must start with a key type ({', '.join(KEY_TYPES[:3])}, ...) and the key, e.g. 'ssh-ed25519 AAAA... ana'"
    try:
        fields = _fields(base64.b64decode(words[1], validate=True))
    except binascii.Error:
        fields = None
    whole = "is not a valid public key (cut short or broken): copy the .pub file's line whole"
    if not fields:
        return whole
    inner = fields[0].decode(errors="replace")
    if inner != words[0]:
        return f"says {words[0]} but holds a {inner} key: copy the .pub file's line whole"
    if len(fields) != KEY_FIELDS[inner] or ("ed25519" in inner and len(fields[1]) != 32):
        return whole
    return None


def problems(people) -> list[str]:
    """Every problem of group_data `people`, each naming the entry and its fix (never contacting a host)."""
    if not isinstance(people, list):
        return [f"{WHERE} must be a list of people (dicts with name, ssh_key, state)"]
    out, names, keys = [], {}, {}
    for i, p in enumerate(people):
        if not isinstance(p, dict):
            out.append(f"{WHERE}[{i}]: must be a dict with name, ssh_key, state")
            continue
        name = p.get("name")
        who = f"{WHERE}[{i}] ({name})" if isinstance(name, str) and name else f"{WHERE}[{i}]"
        unknown = sorted(set(p) - FIELDS)
        if unknown:
            out.append(f"{who}: unknown key(s) {', '.join(unknown)} (a person has {', '.join(sorted(FIELDS))})")
        if not isinstance(name, str) or not name.strip() or len(name) > 80 or not name.isprintable():
            out.append(f"{who}: name must be the person's name, up to 80 printable characters")
        elif name in names:
            out.append(f"{who}: {name!r} is listed twice (entries {names[name]} and {i})")
        else:
            names[name] = i
        if p.get("state") not in STATES:
            out.append(f"{who}: state must be \"present\" or \"absent\" (absent takes their key off every server)")
        email = p.get("email", "")
        if email and (not isinstance(email, str) or not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email)):
            out.append(f"{who}: email {email!r} is not an e-mail address")
        role = p.get("n8n")
        if role is not None and role not in N8N_ROLES:
            out.append(f"{who}: n8n must be \"member\" (" + (
                "n8n's admin role needs an Enterprise license; " if role == "admin" else
                "the owner is N8N_OWNER_EMAIL, claimed by the deploy; " if role == "owner" else "") +
                "leave it out for no n8n account)")
        elif role is not None and not email:
            out.append(f"{who}: an n8n account needs the person's email (n8n's login)")
        problem = _key_problem(p.get("ssh_key"))
        if problem:
            out.append(f"{who}: ssh_key {problem}")
            continue
        material = key_material(p["ssh_key"])[1]
        if material in keys:
            out.append(f"{who}: the same SSH key as {keys[material]}: each person has a key of their own")
        else:
            keys[material] = name
    return out


def refuse_problems(people) -> None:
    """Stop the run (exit 2, before any operation runs) when `people` has a problem, naming each."""
    from tasks.config import _die  # (config imports this module)

    errors = problems(people)
    if errors:
        _die(errors, "cannot deploy, fix group_data people first (nothing was changed)")


def wanted(people: list[dict]) -> tuple[list[str], list[str]]:
    """(the present people's keys as authorized_keys lines, the absent people's keys' base64 parts)."""
    present = [" ".join(p["ssh_key"].split()[:2] + [p["name"].replace(" ", "_")]) for p in people
               if p["state"] == "present"]
    absent = [key_material(p["ssh_key"])[1] for p in people if p["state"] == "absent"]
    return present, absent


def n8n_wanted(people: list[dict], owner_email: str) -> tuple[list[str], list[str]]:
    """(emails that must have an n8n member account, emails whose account must be gone). The
    owner's account is never touched here: listing it absent is refused."""
    owner = owner_email.strip().lower()
    present = sorted({p["email"].lower() for p in people if p.get("n8n") and p["state"] == "present"})
    absent = sorted({p["email"].lower() for p in people if p.get("n8n") and p["state"] == "absent"})
    if owner in absent:
        raise ValueError(f"{WHERE}: {owner_email} is n8n's owner (N8N_OWNER_EMAIL): the owner can never be "
                         "removed this way")
    return [e for e in present if e != owner], absent


def refuse_owner_removal(people: list[dict], owner_email: str) -> tuple[list[str], list[str]]:
    """n8n_wanted(), or stop the run (exit 2, before any operation) when it names the owner absent."""
    from tasks.config import _die

    try:
        return n8n_wanted(people, owner_email)
    except ValueError as e:
        _die([str(e)], "cannot deploy, fix group_data people first (nothing was changed)")


@operation()
def authorized_keys(user: str, present: list[str], absent: list[str]):
    """``user``'s ~/.ssh/authorized_keys holds each ``present`` key and none of the ``absent`` ones
    (matched by key material, whatever the label, options or comment); every other line is kept.

    .. code:: python

        access.authorized_keys(name="ssh: people's keys", user="root",
                               present=["ssh-ed25519 AAAA... ana"], absent=["AAAA..."])
    """
    info = host.get_fact(Users).get(user)
    if not info:
        raise ValueError(f"no user {user} on {host.name}")
    home, group = info["home"], info["group"]
    path = f"{home}/.ssh/authorized_keys"
    lines = host.get_fact(FileContents, path=path) or []
    want = merged(lines, present, absent)
    if want == lines:
        return
    yield f"install -d -m 700 -o {quote(user)} -g {quote(group)} {quote(home + '/.ssh')}"
    yield from files.put._inner(src=StringIO("".join(f"{line}\n" for line in want)), dest=path,
                                user=user, group=group, mode="600")


def merged(lines: list[str], present: list[str], absent: list[str]) -> list[str]:
    """authorized_keys `lines` without the absent keys' lines, then each present key it lacks;
    every other line (other keys, comments, options) as it was, in its place."""
    gone = set(absent)
    kept = [line for line in lines if not _every_key(line) & gone]
    have = {m[1] for m in map(key_material, kept) if m}
    return kept + [key for key in present if key_material(key)[1] not in have]


# each n8n account of n8n's database, one `email|what` line: owner, member or admin (n8n's global
# role: `role` up to n8n 1.x, `roleSlug` since), invited (no password yet), disabled. Read through
# to_jsonb so that either column name works; the password itself is never read out.
N8N_ACCOUNTS_SQL = ("select lower(email) || '|' || case when coalesce((to_jsonb(u) ->> 'disabled')::boolean, false) "
                    "then 'disabled' when u.password is null then 'invited' else regexp_replace(coalesce("
                    "to_jsonb(u) ->> 'roleSlug', to_jsonb(u) ->> 'role', '?'), '^global:', '') end "
                    "from \"user\" u where u.email is not null order by 1")


def parse_accounts(text: str) -> dict[str, str]:
    """N8N_ACCOUNTS_SQL's lines as {email: what}."""
    return dict(line.strip().split("|", 1) for line in text.splitlines() if "|" in line)


def access_report(people: list[dict], servers: dict[str, str | None],
                  accounts: dict[str, dict[str, str] | None] | None = None) -> list[list[str]]:
    """Rows of the access table: one per person, then one per key a server holds that nobody is
    listed for, then one per n8n account nobody is listed for. `servers`: {server name: its
    authorized_keys text, or None when it did not answer}; `accounts`: {n8n server: parse_accounts(),
    or None}. Columns: who, e-mail, state, fingerprint, per server "yes"/"no"/"?" (did not answer),
    then per n8n server the person's account there (owner, member, invited, disabled; "-": none)."""
    found = {name: {m[1]: _comment(line) for line in text.splitlines() if (m := key_material(line))}
             if text is not None else None for name, text in servers.items()}
    accounts = accounts or {}

    def row(who: str, email: str, state: str, key: str | None) -> list[str]:
        return [who, email, state, fingerprint(("", key)) if key else "-",
                *("?" if keys is None else "yes" if key in keys else "no" for keys in found.values()),
                *("?" if acc is None else acc.get(email.lower(), "-") if email else "-" for acc in accounts.values())]

    rows = [row(p["name"], p.get("email", ""), p["state"], key_material(p["ssh_key"])[1]) for p in people]
    listed = {key_material(p["ssh_key"])[1] for p in people}
    comments = {k: c for keys in found.values() if keys for k, c in keys.items()}
    strays = sorted(set(comments) - listed, key=lambda k: fingerprint(("", k)))
    emails = {p.get("email", "").lower() for p in people}
    others = sorted({e for acc in accounts.values() if acc for e in acc} - emails)
    return (rows + [row(f"(not in group_data) {comments[k]}".strip(), "", "-", k) for k in strays]
            + [row("(n8n account not in group_data)", e, "-", None) for e in others])
