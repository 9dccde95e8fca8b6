"""Incident alerts by e-mail and webhook, delivered to a real local SMTP server and a real local HTTP
server by the ``oais audit`` command; a failing webhook is logged and never breaks the audit."""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import os
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from oais.catalog import models as m
from oais.domain.package import Disposition
from oais.services.ingest import IngestRequest, ingest
from tests.conftest import REPO

MAIL_TO = "archivist@example.org"


class SMTPHandler(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib: EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT."""

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode("ascii") + b"\r\n")
        self.wfile.flush()

    def handle(self) -> None:
        server: Any = self.server
        self.reply("220 127.0.0.1 test ESMTP")
        sender, rcpts = None, []
        while line := self.rfile.readline():
            cmd = line.decode("ascii", "replace").rstrip("\r\n")
            verb = cmd[:4].upper()
            server.commands.append(verb)
            if verb == "EHLO":
                self.reply("250-127.0.0.1 hello")
                self.reply("250 8BITMIME")
            elif verb == "HELO":
                self.reply("250 127.0.0.1 hello")
            elif verb == "MAIL":
                sender, rcpts = cmd.split(":", 1)[1].strip(), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(cmd.split(":", 1)[1].strip())
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end data with <CR><LF>.<CR><LF>")
                data = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk[1:] if chunk.startswith(b".") else chunk  # undo dot-stuffing
                server.messages.append({"from": sender, "to": rcpts,
                                        "message": email.message_from_bytes(bytes(data), policy=email.policy.default)})
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 command not implemented")


class HookHandler(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        server: Any = self.server
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        server.posts.append({"path": self.path, "type": self.headers.get("Content-Type"), "body": json.loads(body)})
        status = server.status
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: Any) -> None:
        pass


def _serve(server: Any) -> Iterator[Any]:
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


class SMTPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    server: Any = SMTPServer(("127.0.0.1", 0), SMTPHandler)
    server.messages, server.commands = [], []
    yield from _serve(server)


@pytest.fixture
def hook_server() -> Iterator[Any]:
    server: Any = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HookHandler)
    server.posts, server.status = [], 200
    yield from _serve(server)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _configure(home: Path, smtp_port: int, webhook_url: str) -> None:
    cfg = home / "oais.toml"
    alerts = (f'[alerts]\nsmtp_host = "127.0.0.1"\nsmtp_port = {smtp_port}\nmail_from = "oais@example.org"\n'
              f'mail_to = ["{MAIL_TO}"]\nwebhook_url = "{webhook_url}"\n')
    text = cfg.read_text("utf-8")
    assert text.count("[alerts]\n") == 1
    cfg.write_text(text.replace("[alerts]\n", alerts), encoding="utf-8")


def _damaged_archive(archive, fits_delivery: Path) -> tuple[str, Path]:  # type: ignore[no-untyped-def]
    r = ingest(IngestRequest(fits_delivery, "eit-195", "SOHO/EIT team"), archive.ingest_context())
    assert r.disposition is Disposition.ACCEPTED, r.issues
    victim = sorted((archive.settings.home / "replica-b").rglob("*.fits"))[0]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    return r.aip_id, victim


def _audit(home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("OAIS_HOME", "OAIS_CATALOG_URL") and k.lower() not in ("http_proxy", "https_proxy", "all_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return subprocess.run([sys.executable, "-m", "oais.cli", "audit", "--all", "--home", str(home), "--json"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def _incidents(archive) -> list[m.Incident]:  # type: ignore[no-untyped-def]
    with archive.sessions() as s:
        return list(s.scalars(select(m.Incident)))


def test_incident_sends_one_mail_and_one_webhook(archive, fits_delivery: Path,  # type: ignore[no-untyped-def]
                                                 smtp_server, hook_server) -> None:
    home = archive.settings.home
    aip_id, victim = _damaged_archive(archive, fits_delivery)
    url = f"http://127.0.0.1:{hook_server.server_address[1]}/hooks/oais"
    _configure(home, smtp_server.server_address[1], url)

    r = _audit(home)
    assert r.returncode == 1, r.stderr  # damage found: not intact
    assert "Traceback" not in r.stderr and "alert" not in r.stderr  # both alerts went out
    out = json.loads(r.stdout)
    assert out["intact"] is False and [(f["aip_id"], f["location"]) for f in out["failed"]] == [(aip_id, "replica-b")]
    [incident] = _incidents(archive)
    assert (incident.kind, incident.severity, incident.location, incident.state) == ("fixity", "major", "replica-b",
                                                                                      "open")

    assert len(smtp_server.messages) == 1, smtp_server.commands
    mail = smtp_server.messages[0]
    msg = mail["message"]
    assert mail["from"] == "<oais@example.org>" and mail["to"] == [f"<{MAIL_TO}>"]
    assert msg["To"] == MAIL_TO and msg["From"] == "oais@example.org"
    subject = msg["Subject"]
    assert f"incident {incident.id}" in subject and "fixity" in subject and "major" in subject, subject
    body = json.loads(msg.get_content())
    assert body["aip_id"] == aip_id and body["incident"] == incident.id and body["location"] == "replica-b"
    assert victim.name in body["summary"]

    assert len(hook_server.posts) == 1
    post = hook_server.posts[0]
    assert post["path"] == "/hooks/oais" and post["type"] == "application/json"
    assert post["body"]["aip_id"] == aip_id and post["body"]["severity"] == "major"
    assert post["body"]["incident"] == incident.id and post["body"]["kind"] == "fixity"

    # the damage is found again by the next audit: the same incident, no second alert
    r = _audit(home)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert len(_incidents(archive)) == 1
    assert len(smtp_server.messages) == 1 and len(hook_server.posts) == 1


@pytest.mark.parametrize("failure", ["refused", "http-500", "not-http", "bad-url"])
def test_failing_webhook_is_logged_and_the_audit_completes(archive, fits_delivery: Path,  # type: ignore[no-untyped-def]
                                                           smtp_server, hook_server, failure: str) -> None:
    home = archive.settings.home
    aip_id, _ = _damaged_archive(archive, fits_delivery)
    if failure == "refused":
        url = f"http://127.0.0.1:{_closed_port()}/hooks/oais"
    elif failure == "bad-url":
        url = "127.0.0.1/hooks/oais"  # no scheme: not a URL urllib can open
    elif failure == "not-http":  # a wrong port: the SMTP server answers the POST with an SMTP greeting
        url = f"http://127.0.0.1:{smtp_server.server_address[1]}/hooks/oais"
    else:
        hook_server.status = 500
        url = f"http://127.0.0.1:{hook_server.server_address[1]}/hooks/oais"
    _configure(home, smtp_server.server_address[1], url)

    r = _audit(home)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    out = json.loads(r.stdout)  # the audit ran to its end and reported
    assert out["intact"] is False and out["failed"][0]["aip_id"] == aip_id
    [incident] = _incidents(archive)
    assert f"alert webhook for incident {incident.id} failed" in r.stderr
    with archive.sessions() as s:
        audit = s.scalar(select(m.Audit).where(m.Audit.identifier == out["audit_id"]))
        assert audit is not None and audit.finished_at is not None
    assert len(smtp_server.messages) == 1  # the e-mail still went out
    assert f"incident {incident.id}" in smtp_server.messages[0]["message"]["Subject"]
    assert len(hook_server.posts) == (1 if failure == "http-500" else 0)


def test_failing_alert_does_not_stop_the_scheduled_audit(archive, fits_delivery: Path) -> None:  # type: ignore[no-untyped-def]
    """In the scheduler's tick, an alert that cannot be sent neither skips the next location nor the repair."""
    from dataclasses import replace

    from oais.bootstrap import new_urn, utc_now
    from oais.config import AlertSettings
    from oais.scheduler import audit_tick

    home = archive.settings.home
    _aip_id, victim = _damaged_archive(archive, fits_delivery)
    good = (home / "replica-a" / victim.relative_to(home / "replica-b")).read_bytes()
    assert victim.read_bytes() != good
    archive.settings = replace(archive.settings, audit=replace(archive.settings.audit, cycle_days=1),  # one batch
                               alerts=AlertSettings(webhook_url="127.0.0.1/hooks/oais"))
    out = audit_tick(archive, utc_now, new_urn)
    assert [o["location"] for o in out] == ["replica-a", "replica-b"]
    assert [o["intact"] for o in out] == [True, False]
    assert victim.read_bytes() == good  # repaired from the healthy copy
    with archive.sessions() as s:
        assert {r.location: r.state for r in s.scalars(select(m.Replica))} == {"replica-a": "ok", "replica-b": "ok"}
