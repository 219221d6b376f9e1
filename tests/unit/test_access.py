"""Access as data (tasks/access.py): group_data `people` checked before any host is contacted, the
authorized_keys a deploy leaves, and the access report."""

import subprocess

import pytest

from tasks import access


def keypair(tmp_path, name: str, kind: str = "ed25519") -> tuple[str, str]:
    """(public key line, its ssh-keygen -l fingerprint), made by ssh-keygen."""
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"{name}@notebook", "-f", str(path)], check=True)
    line = path.with_suffix(".pub").read_text().strip()
    fp = subprocess.run(["ssh-keygen", "-l", "-f", str(path.with_suffix(".pub"))], capture_output=True, text=True,
                        check=True).stdout.split()[1]
    return line, fp


@pytest.fixture
def keys(tmp_path):
    return {n: keypair(tmp_path, n) for n in ("ana", "bruno", "deploy")} | {"rsa": keypair(tmp_path, "rsa", "rsa")}


def person(name, key, state="present", **extra):
    return {"name": name, "ssh_key": key, "state": state, **extra}


def test_well_formed_people_have_no_problem_and_fingerprints_are_ssh_keygens(keys):
    people = [person("Ana Souza", keys["ana"][0], email="ana@mottivme.com.br"), person("Bruno", keys["bruno"][0], "absent"),
              person("RSA user", keys["rsa"][0])]
    assert access.problems(people) == []
    for name in ("ana", "rsa"):
        assert access.fingerprint(access.key_material(keys[name][0])) == keys[name][1]


def test_every_problem_is_named_with_its_fix(keys, tmp_path):
    ana = keys["ana"][0]
    kind, blob, _ = ana.split()
    private = (tmp_path / "ana").read_text()
    found = "\n".join(access.problems([
        person("Ana", ana), person("Ana", keys["bruno"][0]),                       # the same name twice
        person("Carla", ana),                                                       # Ana's key
        person("Dani", private),                                                    # a private key
        person("Edu", f"ssh-rsa {blob} edu"),                                       # type and key disagree
        person("Fabi", f"{kind} {blob[:-8]}@@@@ fabi"),                             # broken base64
        person("Gil", keys["rsa"][0], "gone"), {"name": "Hugo", "ssh_key": keys["deploy"][0], "state": "present",
                                                "role": "admin"},
        person("Ivo", keys["rsa"][0].replace(" ", "\n", 1)),
    ]))
    assert "'Ana' is listed twice" in found
    assert "(Carla): the same SSH key as Ana" in found
    assert "(Dani): ssh_key must be an OpenSSH public key" in found and "never a private key" in found
    assert private.splitlines()[1] not in found  # not even a piece of it
    assert "(Edu): ssh_key says ssh-rsa but holds a ssh-ed25519 key" in found
    assert "(Fabi): ssh_key is not a valid public key" in found
    assert "(Gil): state must be \"present\" or \"absent\"" in found
    assert "(Hugo): unknown key(s) role" in found
    assert "(Ivo): ssh_key must be one line" in found
    cut = f"{kind} {blob[:-4]} cut"  # still decodes, still says ssh-ed25519: but a key cut short
    assert access.problems([person("Joao", cut)]) == [
        "group_data people[0] (Joao): ssh_key is not a valid public key (cut short or broken): copy the .pub file's "
        "line whole"]
    assert access.problems({"name": "x"}) == ["group_data people must be a list of people (dicts with name, ssh_key, state)"]


def test_a_deploy_adds_the_present_removes_the_absent_and_leaves_every_other_line(keys):
    ana, bruno, deploy = (keys[n][0] for n in ("ana", "bruno", "deploy"))
    b_kind, b_blob, _ = bruno.split()
    on_server = ["# provider's rescue key below", deploy,
                 f'from="10.0.0.0/8",no-agent-forwarding {b_kind} {b_blob} bruno-old-laptop']  # Bruno's key, other comment
    present, absent = access.wanted([person("Ana Souza", ana), person("Bruno", bruno, "absent")])
    after = access.merged(on_server, present, absent)
    assert after == ["# provider's rescue key below", deploy, " ".join(ana.split()[:2]) + " Ana_Souza"]
    assert access.merged(after, present, absent) == after  # the second run changes nothing
    # a key hidden in a line's options does not pass for the line's key, and an absent key goes
    # whatever the line wraps it in
    a_kind, a_blob, _ = ana.split()
    decoy = f'command="echo {b_kind} {b_blob}" {a_kind} {a_blob} ana'
    assert access.key_material(decoy) == (a_kind, a_blob)
    assert access.merged([decoy, deploy], present, absent) == [deploy, " ".join(ana.split()[:2]) + " Ana_Souza"]
    assert access.key_material(f"{a_kind} {a_blob} D'Ávila laptop") == (a_kind, a_blob)  # a lone quote
    joana = f'restrict,command="rrsync -ro /srv" {a_kind} {a_blob} Joana D\'Arc'  # options and a lone quote
    assert access.key_material(joana) == (a_kind, a_blob)
    assert access.merged([joana], present, absent) == [joana]  # Ana's key already there: not added twice
    # an RSA key is the same key under the labels sshd also takes for it
    r_kind, r_blob, _ = keys["rsa"][0].split()
    gone_rsa = access.wanted([person("RSA user", keys["rsa"][0], "absent")])[1]
    assert access.merged([f"rsa-sha2-512 {r_blob} bob", deploy], [], gone_rsa) == [deploy]
    # Ana's key already there under another comment: kept as it is, not added twice
    own = [ana.replace("ana@notebook", "ana-on-her-phone")]
    assert access.merged(own, present, absent) == own


def test_the_report_shows_who_has_what_where_and_keys_nobody_is_listed_for(keys):
    ana, bruno, deploy = (keys[n][0] for n in ("ana", "bruno", "deploy"))
    people = [person("Ana Souza", ana, email="ana@mottivme.com.br"), person("Bruno", bruno, "absent")]
    b_kind, b_blob, _ = bruno.split()
    servers = {"n8n-1": f"{ana}\n{deploy}\n" + 'ssh-ed25519 AAAA"" junk\n',
               "vault-1": f"from=\"10.0.0.1\" {b_kind} {b_blob} bruno\n", "monitor-1": None}
    rows = access.access_report(people, servers)
    assert rows == [
        ["Ana Souza", "ana@mottivme.com.br", "present", keys["ana"][1], "yes", "no", "?"],
        ["Bruno", "", "absent", keys["bruno"][1], "no", "yes", "?"],  # still on vault-1: the next deploy takes it off
        ["(not in group_data) deploy@notebook", "", "-", keys["deploy"][1], "yes", "no", "?"],
    ]


def test_the_report_shows_each_n8n_servers_accounts_and_those_nobody_is_listed_for(keys):
    ana, bruno = keys["ana"][0], keys["bruno"][0]
    people = [person("Ana Souza", ana, email="Ana@Mottivme.com.br"), person("Bruno", bruno, "absent", email="b@x.io")]
    text = access.parse_accounts("ana@mottivme.com.br|member\nowner@mottivme.com.br|owner\nb@x.io|invited\n")
    assert text == {"ana@mottivme.com.br": "member", "owner@mottivme.com.br": "owner", "b@x.io": "invited"}
    rows = access.access_report(people, {"n8n-1": f"{ana}\n"}, {"n8n-1": text, "n8n-2": None})
    assert rows == [
        ["Ana Souza", "Ana@Mottivme.com.br", "present", keys["ana"][1], "yes", "member", "?"],
        ["Bruno", "b@x.io", "absent", keys["bruno"][1], "no", "invited", "?"],  # the next deploy removes it
        ["(n8n account not in group_data)", "owner@mottivme.com.br", "-", "-", "no", "owner", "?"],
    ]
    # the SQL reads no password out, and takes n8n's role under either column name
    assert "password is null" in access.N8N_ACCOUNTS_SQL and "->> 'password'" not in access.N8N_ACCOUNTS_SQL
    assert "'roleSlug'" in access.N8N_ACCOUNTS_SQL and "'role'" in access.N8N_ACCOUNTS_SQL


def test_an_n8n_account_is_a_member_with_an_email_and_never_the_owners_removal():
    from tasks.access import n8n_wanted, problems

    key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGmYQnZkq0Gq3nOW1Zs7V9p0o8m7bT2l8d3zF0b1c2d3 x"
    base = {"name": "Ana", "state": "present", "ssh_key": key}
    assert problems([{**base, "email": "ana@example.com", "n8n": "member"}]) == []
    (why,) = problems([{**base, "email": "ana@example.com", "n8n": "admin"}])
    assert "n8n's admin role needs an Enterprise license" in why and why.startswith("group_data people[0] (Ana)")
    (why,) = problems([{**base, "email": "ana@example.com", "n8n": "owner"}])
    assert "the owner is N8N_OWNER_EMAIL" in why
    (why,) = problems([{**base, "n8n": "member"}])
    assert why.endswith("an n8n account needs the person's email (n8n's login)")
    people = [{**base, "email": "Ana@Example.com", "n8n": "member"},
              {**base, "name": "Bruno", "email": "bruno@example.com", "n8n": "member", "state": "absent"},
              {**base, "name": "Caio", "email": "caio@example.com"},  # SSH only: no n8n account managed
              {**base, "name": "Owner", "email": "owner@example.com", "n8n": "member"}]
    assert n8n_wanted(people, "OWNER@example.com") == (["ana@example.com"], ["bruno@example.com"])
    people[3]["state"] = "absent"
    with pytest.raises(ValueError, match="the owner can never be removed this way"):
        n8n_wanted(people, "owner@example.com")


def test_n8n_users_are_read_from_psqls_rows():
    from tasks.facts import N8nUsers

    rows = ["ana@mottivme.com.br|global:member|t", "owner@sandbox.test|global:owner|f", "", "garbage"]
    assert N8nUsers().process(rows) == [
        {"email": "ana@mottivme.com.br", "role": "global:member", "pending": True},
        {"email": "owner@sandbox.test", "role": "global:owner", "pending": False}]
    assert "psql -U n8n -d n8n -At" in N8nUsers().command("cd /opt/n8n && docker compose -p n8n", "n8n", "n8n")
