#!/usr/bin/env python3
"""A real SMTP server for the notification tests (aiosmtpd, from PyPI).

Writes every message it accepts to DIR/<n>.eml (the raw bytes as received, with an
Envelope-To line first) and answers `451` to the first --fail-first transactions, so
tests can watch retries. Prints "READY" on stdout once it listens.

    python3 tools/smtp_sink.py --port 2525 --dir /tmp/mail [--fail-first 2]

With --tls starttls (STARTTLS offered, and required before MAIL) or --tls implicit (TLS from the
first byte, as on port 465) and --cert/--key (PEM files), it speaks TLS, and writes the TLS
version each message came over to DIR/<n>.tls.

With --dump FILE… it instead prints the received messages as a JSON list (headers and decoded
parts, parsed by Python's email package), so tests need no MIME parser of their own:

    python3 tools/smtp_sink.py --dump /tmp/mail/1.eml /tmp/mail/2.eml
"""
import argparse
import email
import email.policy
import itertools
import json
import os
import sys


def dump(paths):
    print(json.dumps([parse(p) for p in paths]))


def parse(path):
    with open(path, "rb") as f:
        raw = f.read()
    msg = email.message_from_bytes(raw.split(b"\r\n", 1)[1], policy=email.policy.default)
    parts = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        parts.append({"content_type": part.get_content_type(), "body": part.get_content()})
    return {
        "envelope_to": raw.split(b"\r\n", 1)[0].decode().removeprefix("Envelope-To: "),
        "from": str(msg["From"]),
        "to": str(msg["To"]),
        "subject": str(msg["Subject"]),
        "message_id": str(msg["Message-ID"]),
        "content_type": msg.get_content_type(),
        "headers": {name: str(value) for name, value in msg.items()},
        "parts": parts,
        # The TLS version the message came over, or None when it came in the clear.
        "tls": read_if_exists(path.removesuffix(".eml") + ".tls"),
    }


def read_if_exists(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


class Sink:
    def __init__(self, directory, fail_first):
        self.directory = directory
        self.fail_left = fail_first
        self.counter = itertools.count(1)

    async def handle_DATA(self, server, session, envelope):
        if self.fail_left > 0:
            self.fail_left -= 1
            return "451 4.3.0 Try again later (test sink)"
        n = next(self.counter)
        tls = server.transport.get_extra_info("ssl_object")
        if tls is not None:
            with open(os.path.join(self.directory, f"{n}.tls"), "w") as f:
                f.write(tls.version())
        tmp = os.path.join(self.directory, f".{n}.tmp")
        with open(tmp, "wb") as f:
            f.write(("Envelope-To: " + ", ".join(envelope.rcpt_tos) + "\r\n").encode())
            f.write(envelope.original_content or envelope.content)
        # Renamed into place so a reader never sees half a message.
        os.rename(tmp, os.path.join(self.directory, f"{n}.eml"))
        return f"250 2.0.0 Ok: queued as sink-{n}"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int)
    p.add_argument("--dir")
    p.add_argument("--fail-first", type=int, default=0)
    p.add_argument("--dump", nargs="+")
    p.add_argument("--tls", choices=["starttls", "implicit"])
    p.add_argument("--cert")
    p.add_argument("--key")
    a = p.parse_args()
    if a.dump:
        dump(a.dump)
        return
    from aiosmtpd.controller import Controller
    os.makedirs(a.dir, exist_ok=True)
    options = {}
    if a.tls:
        import ssl

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(a.cert, a.key)
        if a.tls == "implicit":
            options["ssl_context"] = context
        else:
            options["server_kwargs"] = {"tls_context": context, "require_starttls": True}
    controller = Controller(Sink(a.dir, a.fail_first), hostname="127.0.0.1", port=a.port, **options)
    controller.start()
    print("READY", flush=True)
    try:
        # Runs until the test kills it, or its stdin closes (the test process died).
        sys.stdin.read()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
