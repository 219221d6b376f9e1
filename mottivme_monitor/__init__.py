"""mottivme_monitor: an off-host monitor for the self-hosted n8n (checks as data, like Gatus;
push heartbeats, like healthchecks.io), with an escalation ladder and a static status page.

Installed into a virtualenv (requirements.txt: apprise, psycopg[binary]) with this package
directory copied to /opt/mottivme-monitor/lib/mottivme_monitor, and run as

    PYTHONPATH=/opt/mottivme-monitor/lib /opt/mottivme-monitor/venv/bin/python -m mottivme_monitor \\
        --config /etc/mottivme-monitor/config.json COMMAND

`run` from a systemd timer every minute, `serve` as a long-running service behind Caddy
(which proxies /ping/* to it and serves www_dir as static files).

Configuration (JSON)
--------------------
Top level (keys starting with "_" are ignored as comments; any other unknown key is an error):

    db                  path of the SQLite database (required)
    www_dir             directory for index.html and status.json (required)
    listen              "host:port" of `serve` (default "127.0.0.1:8321")
    ping_token          the master heartbeat token; `serve` refuses to start when it is empty.
                        A heartbeat check with a `sender` takes only that server's own
                        token, derived from this one (tokens.py); a check without, this one
    title               status page title (default "Status")
    public_url          optional status page URL, added to notification bodies
    interval_seconds    informational, copied to status.json (default 60)
    raw_history_days    raw results, pings and notification log kept this long (default 35)
    ladder              the global escalation ladder (default: the SOP below)
    channels            {name: channel}
    checks              [check, ...] (required, non-empty)
    timezone            the clock of the posted incidents on the page, in messages and post-mortems
                        (default "America/Sao_Paulo"; other times stay UTC)
    incidents           the team's posted incidents (reports.py): {"update_minutes": 15 (an open one
                        without an update this long asks `channels` for one; 0 = never),
                        "channels": [the team's], "clients_channel": "" (the clients' channel: posts
                        with --notify-clients, and outages past a check's clients_after_minutes),
                        "postmortem_dir": "" (default: postmortems/ beside db)}

`${VAR}` anywhere in a string value is replaced from the environment when the file is
loaded (systemd's EnvironmentFile holds the secrets; the JSON holds none). An unset
variable becomes "". A missing or invalid file is one line on stderr naming the file and
the problem, exit 2.

Channels:
    {"apprise": "URL"}        any apprise URL, e.g. whatsapp://..., mailtos://..., json://host/path
    {"type": "webhook", "url": "...", "auth": "user:password", "form": {"Field": "text"},
     "timeout_seconds": 10}
        form-encoded POST (e.g. Twilio's Calls API for a phone call). "{message}" in a form
        value is replaced by the one-line message, XML-escaped when the value is XML
        (starts with "<", e.g. "Twiml": "<Response><Say>{message}</Say></Response>").
        auth -> HTTP basic auth. Any 2xx answer counts as delivered.
    A channel whose URL is "" (e.g. its variable is unset) is disabled: sends to it are
    logged as "skipped" and never fail the round.
    Apprise gets title = the one-line message and body = a few lines of detail (reason,
    since, description, status page). Plain SMTP without TLS, e.g. a local relay:
    mailto://HOST:PORT?from=monitor@example.com&to=ops@example.com&mode=insecure

Ladder: {"steps": [{"after_minutes": 5, "channels": ["whatsapp"]}, ...],
         "reminder_minutes": 60, "recovery_successes": 2}
    Every channel a step names must be defined in "channels". The default is the SOP:
    5 min -> whatsapp; 15 min -> whatsapp + email; 60 min -> phone; reminders every 60 min;
    2 good results resolve.

Checks: {"name": ..., "type": "http"|"postgres"|"heartbeat", "description": "", "group": "",
         "ladder": {...optional per-check override...}, "clients_after_minutes": N (optional: the
         clients' channel hears of an outage this long, and of its end), ...type keys}
    Names: 1-64 of letters, digits, ".", "_", "-" (they appear in ping URLs).

    http: url (required), method "GET", headers {}, body "", expect_status [200],
          json [{"path": "a.b.0.c", "equals"|"in"|"exists"|"max"|"min": value}],
          max_response_ms (none), timeout_seconds 10, tls_min_days (none),
          tls_verify true, ca_file "" (added to the system CAs), resolve "" (an address to
          connect to instead of the URL's host, like curl --resolve: the Host header, SNI
          and certificate check still use the URL's host; for hosts without DNS).
        Up when the status is expected AND every json condition holds AND the response
        took <= max_response_ms AND (https with tls_min_days) the server certificate has
        >= tls_min_days left. Certificate days are read from the certificate itself, so
        they work with tls_verify false too. Redirects are not followed.
        Reasons: "HTTP 503", "status is 'error', expected 'ok'", "x is missing",
        "took 7200 ms > 5000 ms", "certificate expires in 5 days (< 14)",
        "TLS certificate not trusted: ...", "connection refused", "timeout after 10 s".
    postgres: dsn (required; "" -> down "dsn is empty"), query "select 1", timeout_seconds 10
        (libpq connect_timeout). Reasons: "connection refused (HOST port N)", libpq's message.
    heartbeat: max_age_minutes (required), max_value (none), unit "",
        value_label (default: the name up to its first "-", so "disk-n8n1" -> "disk"),
        sender (none: the inventory name of the server that sends it; its pings are then
        taken only with server_token(ping_token, sender), never the master token; without a
        sender, only the master token).
        Judged from the newest ping at or before the round's time. Reasons: "never pinged",
        "no ping for 26 h 3 min (max 26 h)", "disk at 91 % > 85 %" (value_label "disk"),
        "reported failure: <body of the /fail ping>", "ping carried no value (max 85 %)".
    Every network check runs in its own thread, all at once; a check still running after
    2 x timeout_seconds + 5 s is reported "timeout after N s (check hung)".

Commands (exit 0 = the monitor worked, even with services down; 2 = bad config/usage;
3 = the monitor itself failed; `check` also exits 1 when a service is down)
--------
    run [--now ISO8601]
        One round: every check concurrently, results recorded, the ladder evaluated per
        check, notifications sent, the status page rewritten (temp file + rename, 0644).
        Prints one line per check and one per notification ("notify CHECK -> CHANNEL:
        sent|failed (detail)|skipped (detail): MESSAGE"). A lock file (db + ".lock") makes
        an overlapping run skip its round. --now is the injectable clock (default: now, UTC).
    check [--json] [--now]
        Runs every check now without recording or notifying; a table NAME STATE MS REASON
        (or JSON); exit 1 if any is down, 0 otherwise. Maintenance is not considered.
    serve [--listen HOST:PORT]
        Heartbeat receiver (ThreadingHTTPServer) on `listen` (port 0 = any free port; the
        first stdout line is "listening on http://HOST:PORT").
        GET|POST /ping/<token>/<name>: a ping now; the value is ?value=N or a numeric POST
        body. GET|POST /ping/<token>/<name>/fail: an explicit failure; the check is down
        until the next good ping; the body (<= 300 chars) is the reason.
        <token> is the check's sender's token (server_token(ping_token, sender)), or
        ping_token for a check without a sender.
        200 "ok"; a token that is nobody's 403 (whatever the name); a name that is not a
        heartbeat check 404; another sender's token, or the master token for a check with a
        sender, 403; a value that is not a number 400. GET /healthz: 200 "ok". The token is
        masked in the request log.
        Pings are stamped with the real clock.
    maintenance start NAME [NAME...] --minutes N --reason TEXT [--now]
    maintenance end NAME [NAME...] | --all [--now]
    maintenance list [--now]
        NAME "*" = all checks; unknown names are an error (exit 2). Starting again for a
        name with an open window replaces its end (now + N) and reason. A window expires by
        itself. Ending one that is not open prints "nothing was open" (exit 0); ending a
        name does not end a "*" window (end "*" or --all).
    status [--json] [--now]
        The current state from the database (no checks run); --json = status.json's content.
    incident open --service CHECK [...] --title T --impact I [--clients N] [--message M]
             [--status S] [--eta E] [--notify-clients] [--now]
    incident update ID --message M [--status S] [--eta E] [--notify-clients] [--now]
    incident resolve ID --message M [--notify-clients] [--now]
    incident list [--json] [--now]
        The team's incidents: each post goes to incidents.channels (and the clients' channel with
        --notify-clients) and the status page is rewritten at once. Statuses: investigating,
        identified, monitoring, resolved. --eta: 45m, 2h, 1h30m from now, or HH:MM on the
        `timezone` clock (the next such time). `resolve` prints the post-mortem skeleton's path.
        An unknown service, a bad --eta, a resolved or missing ID: one line, exit 2, nothing changed.
    token SERVER
        Prints SERVER's heartbeat token (server_token(ping_token, SERVER)), to send one of its
        pings by hand; a SERVER that no heartbeat check has as its sender is an error (exit 2)
        listing the senders.

Escalation ladder
-----------------
- A check is down since the first failed result of its current unbroken run of failures;
  any successful result resets that. A service flapping up/down every round therefore
  never reaches the first step and pages nobody.
- Down-duration = now - down-since, or now - the end of a maintenance window that ended
  during the failure run (the planned part pages nobody).
- When the down-duration reaches a step's after_minutes, that step's message goes once per
  incident to its channels. If several steps are crossed at once (missed rounds), only the
  highest is sent and the lower ones count as done. After the last step sent, a reminder
  goes to that step's channels every reminder_minutes (0 = never) while still down.
- The incident opens when the first step is reached (start = down-since, or the window end);
  shorter failures create no incident and send nothing. It resolves after
  recovery_successes consecutive good results; then ONE "[RESOLVED]" notice goes to every
  channel that received something during the incident, with the outage duration
  (down-since to the first good result).
- Delivery: a step (or reminder) counts as sent when at least one channel got it, or when
  all its channels are disabled; when every enabled channel failed it is retried on the next
  round. A RESOLVED notice that failed is retried each round for a day. Every attempt is
  logged (stdout and the notifications table); a failing channel never stops other checks.
- During maintenance of a check nothing is sent for it and the ladder does not advance;
  an incident that recovers during the window is resolved (and its notice sent) after the
  window ends.
- Messages: "[DOWN 15 min] n8n: HTTP 503 — since 03:12 UTC", "[STILL DOWN 2 h] ...",
  "[RESOLVED] n8n is up again after 47 min".
- All state is in SQLite, so a new process continues an incident without re-paging.

Uptime and the status page
--------------------------
    uptime = up results / results outside maintenance windows
per day on the configuration's clock (`timezone`), and over the last 30 such days (today
included) for the 30-day figure.
Results inside a maintenance window count for neither. Percentages are truncated to two
decimals ("100.00%" only without any failure). Computed from the per-day aggregate table
(updated with each result), never by scanning raw results.
www_dir/index.html: self-contained (inline CSS, no JavaScript, no external assets): title,
banner ("All systems operational" / "n of m services down"), per service name, description,
state (Up / Down since / Maintenance until), 30-day uptime, 30 day cells (colour by uptime,
title "DATE: 99.95%", grey = no data, blue = maintenance only), open incidents, the last 20
resolved incidents (service, start, end, duration), maintenance windows, generated time.
www_dir/status.json: {title, generated_at, interval_seconds, summary, services: [{name,
description, group, state (up|down|maintenance|unknown), ok, reason, since, last_check, ms,
uptime_30d, days: [{date, uptime, results, maintenance}], maintenance, incident}],
incidents: {open, recent}, maintenance: [...], timezone, reports: [{id, title, impact, services,
status, opened, resolved, updates: [{at, status, message, eta}]}], uptime_definition}. Times are
ISO 8601 UTC, except reports' (ISO 8601 with the `timezone` offset).

Time: the injected clock (--now) drives everything the monitor records and decides (result
times, ladder, heartbeat ages, maintenance, uptime days). Certificate days left are measured
against the real clock, like the TLS handshake itself.

Database (SQLite, WAL, PRAGMA user_version = schema version; store.MIGRATIONS): results,
daily, state, incidents, reports, report_updates, pings, maintenance, notifications. Raw rows older than
raw_history_days are pruned each round (the newest ping of each name is kept); per-day
aggregates are kept 400 days; incidents are kept.
"""

__version__ = "1.0.0"
