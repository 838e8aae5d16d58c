"""A real SMTP server on loopback (aiosmtpd) for the confirmation-email test.

Prints {"port": N} once listening. For every message received, prints one JSON line: the envelope, the headers, the
plain-text body, and each text/calendar attachment parsed back with the `icalendar` package (method, uid, sequence,
status, start with its TZID, end, summary, organizer, attendees). Stops when stdin closes.
"""
import email
import email.policy
import json
import socket
import sys

from aiosmtpd.controller import Controller
from icalendar import Calendar


def invitation(part):
    cal = Calendar.from_ical(part.get_payload(decode=True))
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1, f"one VEVENT expected, found {len(events)}"
    ev = events[0]
    start = ev.decoded("DTSTART")
    return {
        "content_type": part.get("Content-Type"),
        "filename": part.get_filename(),
        "method": str(cal.get("METHOD")),
        "version": str(cal.get("VERSION")),
        "uid": str(ev.get("UID")),
        "sequence": int(ev.get("SEQUENCE", 0)),
        "status": str(ev.get("STATUS")),
        "summary": str(ev.get("SUMMARY")),
        "location": str(ev.get("LOCATION")),
        "dtstart": start.isoformat(),
        "tzid": ev["DTSTART"].params.get("TZID"),
        "dtend": ev.decoded("DTEND").isoformat(),
        "organizer": str(ev.get("ORGANIZER")),
        "attendees": [str(a) for a in (ev.get("ATTENDEE") if isinstance(ev.get("ATTENDEE"), list) else [ev.get("ATTENDEE")]) if a],
    }


class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = msg.get_body(preferencelist=("plain",))
        out = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "from": str(msg["From"]),
            "to": str(msg["To"]),
            "subject": str(msg["Subject"]),
            "text": body.get_content() if body else "",
            "invites": [invitation(p) for p in msg.walk() if p.get_content_type() == "text/calendar"],
        }
        print(json.dumps(out), flush=True)
        return "250 Message accepted for delivery"


# aiosmtpd's controller checks its server by connecting to the port it was given, so it needs a real one: ask the
# system for a free port first.
with socket.socket() as probe:
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
controller = Controller(Handler(), hostname="127.0.0.1", port=port)
controller.start()
print(json.dumps({"port": port}), flush=True)
sys.stdin.read()
controller.stop()
