"""WhatsApp through Meta's Cloud API (apprise's whatsapp:// URLs), standard library only (the
deploy and `mottivme doctor` use whatsapp_form too).

Meta delivers a message a business starts (free-form text) only within 24 hours of the
recipient's last message; outside that window it takes an approved template. A template URL
(`whatsapp://TEMPLATE:TOKEN@PHONE_ID/TO?lang=pt_BR&:body=1`) gets the message as the template's
one body parameter, on one line (Meta refuses a parameter with a newline, a tab or more than four
spaces in a row) and at most TEMPLATE_PARAMETER_MAX characters.
"""

from __future__ import annotations

import re
import urllib.parse

TEMPLATE_PARAMETER_MAX = 1000  # Meta: a template's body, parameters filled in, at most 1024 characters


def whatsapp_form(url: str) -> str:
    """"template", "free-form" or "" (not a WhatsApp URL), for apprise's
    whatsapp://[TEMPLATE:]TOKEN@PHONE_ID/TO[?template=TEMPLATE&...]"""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "whatsapp":
        return ""
    query = {k.lower(): v for k, v in urllib.parse.parse_qsl(parts.query)}  # apprise reads them lower-cased
    return "template" if parts.password or query.get("template") else "free-form"


def template_parameter(title: str, body: str) -> str:
    """The message as one template parameter: one line, spaces collapsed, at most
    TEMPLATE_PARAMETER_MAX characters."""
    text = re.sub(r"\s+", " ", " — ".join(part for part in (title, body) if part.strip())).strip()
    return text if len(text) <= TEMPLATE_PARAMETER_MAX else text[:TEMPLATE_PARAMETER_MAX - 1].rstrip() + "…"
