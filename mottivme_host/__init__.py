"""mottivme_host: the programs that run on the servers (backup, restore, cleanup, deploy-version,
restart, rotate, set-version).

Standard library only: the deploy copies this package to /usr/local/lib/mottivme and runs it
with the server's own python3 (no PyPI on the server). Every external tool stays the real one
(restic, docker / compose, pg_dump / pg_restore through the PostgreSQL images, n8n's CLI, curl),
called through one seam, `run.Runner`, so the unit tests drive every decision with a recording
fake and the integration tests prove the same code on real servers.

Settings come from one file the deploy renders, /etc/mottivme/host.json (0600): see settings.py.
"""
