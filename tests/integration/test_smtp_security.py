"""Mail to a server that requires STARTTLS and then a login (aiosmtpd, configured as a
production relay would be), with a self-signed certificate made here and trusted alone."""

from __future__ import annotations

import smtplib
import subprocess
from datetime import UTC, datetime

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from services.notifications import mailer
from tests.conftest import free_port

USER, PASSWORD = "clinic", "s3cret-relay"


class Relay:
    """Accepts mail only over TLS from a logged-in client, and says how each came."""

    def __init__(self) -> None:
        self.received: list[dict] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.received.append({"tls": session.ssl is not None, "login": session.authenticated,
                              "to": list(envelope.rcpt_tos)})
        return "250 OK"


def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def relay(tmp_path, monkeypatch):
    """The relay on a free port; its certificate (for 127.0.0.1) is the only one trusted."""
    import ssl

    cert, key = tmp_path / "relay.pem", tmp_path / "relay.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # ssl.create_default_context() trusts it
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    handler = Relay()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticate,
                            auth_required=True, auth_require_tls=True)
    controller.start()
    yield handler, controller.port
    controller.stop()


def letter():
    return mailer.build_email(subject="Your session", text="See you", html="<p>See you</p>",
                              sender="clinic@clinic.example", sender_name="The clinic",
                              to="ann@example.org",
                              to_name="Ann Lee", message_id=mailer.message_id(1, "clinic.example"),
                              date=datetime(2026, 12, 1, 10, tzinfo=UTC))


def test_mail_goes_over_starttls_with_a_login(relay):
    handler, port = relay
    mailer.SmtpTransport("127.0.0.1", port, starttls=True, username=USER, password=PASSWORD,
                         timeout=10).send(letter())
    assert handler.received == [{"tls": True, "login": True, "to": ["ann@example.org"]}]


def test_the_relay_refuses_plain_text_and_a_wrong_password(relay):
    handler, port = relay
    with pytest.raises(smtplib.SMTPException):
        mailer.SmtpTransport("127.0.0.1", port, timeout=10).send(letter())
    with pytest.raises(smtplib.SMTPAuthenticationError):
        mailer.SmtpTransport("127.0.0.1", port, starttls=True, username=USER, password="wrong",
                             timeout=10).send(letter())
    assert handler.received == []
