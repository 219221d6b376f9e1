"""Disposable Debian 13 (and 12) servers on this machine, for the demo, the tests and the benchmarks.

Each server is a container with systemd as PID 1, sshd, cron and python3, in its own network
namespace, run by the sandbox's private Docker engine (``sandbox/engine.sh``: its own
``dockerd`` in an empty network namespace, so nothing here touches the machine's docker0,
firewall or sysctls). A person, pyinfra and the tests reach a server over SSH on
``127.0.0.1:<ssh_port>`` and its HTTPS (Caddy) on ``127.0.0.1:<https_port>``; the servers of
one sandbox reach each other on a private bridge that exists only inside the engine's namespace.

Everything the sandbox starts is recorded in ``.sandbox/hosts.json`` and torn down by those ids.

    python -m sandbox up --hosts 2          # start (or add) servers
    python -m sandbox status
    python -m sandbox down                  # remove every server, stop engine and proxies
"""
