"""Bearer tokens and TLS on a real server."""

from __future__ import annotations

import ssl
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from optunapi import AuthenticationError, Client, PermissionDeniedError

from .conftest import ServerProcess

SPACE = {"x": {"type": "float", "low": 0, "high": 1}}


@pytest.fixture
def guarded(tmp_path: Path):
    """A server with two tokens, over HTTPS with a self-signed certificate."""
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "1",
         "-keyout", str(tmp_path / "key.pem"), "-out", str(tmp_path / "cert.pem"),
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    (tmp_path / "tokens").write_text("# trainers\nalpha-123\nbeta-456\n")
    srv = ServerProcess(
        tmp_path,
        f"sqlite:///{tmp_path / 'sec.db'}",
        env={
            "OPTUNAPI_TOKENS_FILE": str(tmp_path / "tokens"),
            "OPTUNAPI_SSL_CERTFILE": str(tmp_path / "cert.pem"),
            "OPTUNAPI_SSL_KEYFILE": str(tmp_path / "key.pem"),
        },
    )
    srv.start()
    yield srv, str(tmp_path / "cert.pem")
    srv.stop()


def test_requests_need_a_known_token(guarded: tuple[ServerProcess, str]) -> None:
    srv, cert = guarded
    assert srv.url.startswith("https://")
    with httpx.Client(base_url=srv.url, verify=ssl.create_default_context(cafile=cert)) as http:
        missing = http.post("/v1/studies", json={"name": "s", "space": SPACE})
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert missing.json()["type"].endswith("unauthenticated")
        wrong = http.get("/v1/studies", headers={"Authorization": "Bearer alpha-12"})
        assert wrong.status_code == 403
        assert http.get("/dashboard").status_code == 401
        assert http.get("/metrics").status_code == 401
        assert http.get("/optunapi/ping").status_code == 200  # liveness stays open
        ok = http.get("/v1/studies", headers={"Authorization": "Bearer beta-456"})
        assert ok.status_code == 200 and ok.json() == {"studies": []}  # nothing was created
        # A browser opens the dashboard once with ?token=, then its cookie does.
        assert http.get("/dashboard", params={"token": "nope"}).status_code == 403
        login = http.get("/dashboard", params={"token": "alpha-123"})
        assert login.status_code == 303 and "httponly" in login.headers["set-cookie"].lower()
        assert http.get("/api/studies").status_code == 200  # the cookie is kept by the client


def test_the_client_sends_its_token_over_tls(guarded: tuple[ServerProcess, str]) -> None:
    srv, cert = guarded
    with Client(srv.url, token="alpha-123", verify=cert) as c:
        c.create_study("s", SPACE)
        c.optimize("s", lambda p: p["x"], n_trials=2)
        assert len(c.trials("s")) == 2
    with Client(srv.url, verify=cert, token="") as c, pytest.raises(AuthenticationError):
        c.studies()
    with Client(srv.url, verify=cert, token="nope") as c, pytest.raises(PermissionDeniedError):
        c.studies()
    with pytest.raises(httpx.TransportError):  # plain HTTP to a TLS port does not work
        httpx.get(srv.url.replace("https", "http") + "/optunapi/ping", timeout=5).raise_for_status()


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--ssl-certfile", "missing.pem", "--ssl-keyfile", "missing-key.pem"], "TLS certificate"),
        (["--ssl-keyfile", "key.pem"], "--ssl-keyfile needs --ssl-certfile"),
        (["--port", "99999"], "port"),
    ],
)
def test_serve_refuses_bad_tls_files_and_ports_before_it_says_it_serves(
    tmp_path: Path, flags: list[str], said: str
) -> None:
    (tmp_path / "key.pem").write_text("not a key\n")
    done = subprocess.run(
        [sys.executable, "-m", "optunapi.cli", "serve", "--port", "0",
         "--storage", f"sqlite:///{tmp_path / 'x.db'}", *flags],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert "serving on" not in done.stdout
    assert done.stderr.startswith("optunapi: ") and said in done.stderr
    assert "Traceback" not in done.stderr
