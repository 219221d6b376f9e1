"""Deliver a message to one channel: apprise URLs, or a form-POST webhook (phone calls).

send() never raises: it answers an Outcome ("sent", "failed" with a detail, or "skipped"
when the channel is disabled because its URL expanded to "").

Webhook channels POST `form` form-encoded; `{message}` in a field is replaced by the
message (XML-escaped when the field holds XML, e.g. Twilio's Twiml), with HTTP basic
auth from `auth` ("user:password") when set. 2xx = sent.

A WhatsApp template URL gets the message as the template's one body parameter (whatsapp.py).
"""

from __future__ import annotations

import base64
import logging
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from xml.sax.saxutils import escape as xml_escape

from .config import Channel
from .whatsapp import template_parameter, whatsapp_form


@dataclass(frozen=True)
class Outcome:
    channel: str
    status: str      # "sent" | "failed" | "skipped"
    detail: str = ""


def send(channel: Channel, title: str, body: str) -> Outcome:
    """Send title/body through the channel; `title` is the one-line message."""
    if not channel.enabled:
        return Outcome(channel.name, "skipped", "its URL is empty")
    try:
        if channel.type == "webhook":
            return _send_webhook(channel, title)
        return _send_apprise(channel, title, body)
    except Exception as e:  # noqa: BLE001 - a channel must never stop the round
        return Outcome(channel.name, "failed", f"{type(e).__name__}: {e}")


def form_fields(channel: Channel, message: str) -> dict[str, str]:
    """The webhook's form with {message} filled in (XML-escaped inside XML fields)."""
    out = {}
    for key, value in channel.form.items():
        text = xml_escape(message) if value.lstrip().startswith("<") else message
        out[key] = value.replace("{message}", text)
    return out


def _send_webhook(channel: Channel, message: str) -> Outcome:
    data = urllib.parse.urlencode(form_fields(channel, message)).encode()
    req = urllib.request.Request(channel.url, data=data, method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "User-Agent": "mottivme-monitor/1"})
    if channel.auth:
        req.add_header("Authorization", "Basic " + base64.b64encode(channel.auth.encode()).decode())
    problem = _http(req, channel.timeout_seconds)
    return Outcome(channel.name, "failed", problem) if problem else Outcome(channel.name, "sent")


def _http(req: urllib.request.Request, timeout: float) -> str:
    """Send a request (no proxy); "" for a 2xx answer, else the problem in a few words (never the URL)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            status = resp.status
    except urllib.error.HTTPError as e:
        return f"HTTP {e.code}"
    except urllib.error.URLError as e:
        reason = e.reason
        return getattr(reason, "strerror", None) or str(reason)
    except OSError as e:
        return e.strerror or str(e)
    return "" if 200 <= status < 300 else f"HTTP {status}"


def _send_apprise(channel: Channel, title: str, body: str) -> Outcome:
    import apprise  # imported lazily: loading its plugins takes a few hundred ms

    notifier = apprise.Apprise()
    if not notifier.add(channel.url):
        return Outcome(channel.name, "failed", "apprise does not accept this URL")
    if whatsapp_form(channel.url) == "template":  # the message is the template's parameter
        title, body = "", template_parameter(title, body)
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as log:
        ok = notifier.notify(title=title, body=body, body_format=apprise.NotifyFormat.TEXT)
    if ok:
        return Outcome(channel.name, "sent")
    lines = [line.strip() for line in log.getvalue().splitlines() if line.strip()]
    return Outcome(channel.name, "failed", lines[-1][:300] if lines else "apprise reported a failure")


def ping_deadman(url: str, timeout: float = 10) -> str:
    """GET a dead man's switch URL (healthchecks.io's protocol: any 2xx = alive); "" when it
    answered, else the problem in a few words (never the URL: its path is the switch's secret).
    At most `timeout` seconds in all, however slowly the switch answers: the round waits no longer."""
    req = urllib.request.Request(url, headers={"User-Agent": "mottivme-monitor/1"})

    def get() -> str:
        try:
            return _http(req, timeout)
        except Exception as e:  # noqa: BLE001 - not HTTP at all (BadStatusLine...): a reason, never a traceback
            return f"not an HTTP answer ({type(e).__name__})"

    box: list[str] = []
    t = threading.Thread(target=lambda: box.append(get()), daemon=True)
    t.start()
    t.join(timeout)
    return box[0] if box else f"no answer within {timeout:g} s"
