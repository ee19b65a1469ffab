"""The gateways' identity: the FTPS certificate (generated for `make run`, set in production),
the fingerprints operators show clients, and the deploy check refusing generated ones."""

import os
import socket
import ssl
import subprocess
import sys

import pytest
from cryptography import x509
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.urls import reverse

from batches.gateway.identity import gateway_identity
from kokatto_site.local_secrets import ftps_certificate, new_ec_private_key_pem, self_signed_pem
from tests.clients.test_deploy_checks import manage_check_deploy
from tests.security.production import gateway_identity_env

CHANGELIST = reverse("admin:batches_gatewayaccount_changelist")


def openssl_fingerprint(certificate_pem: str) -> str:
    """What `openssl x509 -fingerprint -sha256` prints for the certificate."""
    printed = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
        input=certificate_pem,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return printed.strip().split("=", 1)[1]


def test_a_generated_certificate_is_made_once_for_localhost_and_127_0_0_1(tmp_path):
    paths = (tmp_path / "cert.pem", tmp_path / "key.pem")
    certificate, key = ftps_certificate("", "", *paths)
    assert ftps_certificate("", "", *paths) == (certificate, key)  # read back, not remade
    assert oct(paths[1].stat().st_mode & 0o777) == "0o600"
    names = (
        x509.load_pem_x509_certificate(certificate.encode())
        .extensions.get_extension_for_class(x509.SubjectAlternativeName)
        .value
    )
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_a_certificate_set_in_the_environment_is_used_as_it_is(tmp_path):
    key = new_ec_private_key_pem()
    certificate = self_signed_pem(key)
    paths = (tmp_path / "cert.pem", tmp_path / "key.pem")
    assert ftps_certificate(certificate, key, *paths) == (certificate, key)
    assert not paths[0].exists() and not paths[1].exists()
    with pytest.raises(ImproperlyConfigured, match="both FTPS_CERTIFICATE and FTPS_PRIVATE_KEY"):
        ftps_certificate(certificate, "", *paths)


def test_the_identity_is_the_fingerprints_openssh_and_openssl_print():
    identity = gateway_identity()
    assert identity.certificate == openssl_fingerprint(settings.FTPS_CERTIFICATE)
    assert identity.ssh_host_key.startswith("SHA256:")


def test_the_account_list_shows_both_fingerprints(staff_client):
    identity = gateway_identity()
    page = staff_client.get(CHANGELIST).content.decode()
    assert f"SFTP host key fingerprint: {identity.ssh_host_key}" in page
    assert f"FTPS certificate fingerprint: SHA-256 {identity.certificate}" in page
    assert "gateway-plain-ftp" not in page
    assert "batches/gateway_identity.css" in page  # a stylesheet: no inline style under the CSP


def test_the_account_list_says_in_red_when_plain_ftp_is_allowed(operator_client, settings):
    settings.FTPS_ALLOW_PLAIN_FTP = True
    page = operator_client.get(CHANGELIST).content.decode()
    assert '<p class="gateway-plain-ftp">Plain FTP is allowed' in page
    assert "style=" not in page.split('id="gateway-identity"')[1].split("</div>")[0]
    stylesheet = (settings.BASE_DIR / "static" / "batches" / "gateway_identity.css").read_text()
    assert ".gateway-plain-ftp { color: var(--error-fg" in stylesheet


def test_gateway_fingerprints_prints_both(capsys):
    call_command("gateway_fingerprints")
    printed = capsys.readouterr().out
    identity = gateway_identity()
    assert identity.ssh_host_key in printed and identity.certificate in printed


def test_run_ftps_gateway_serves_the_certificate_it_prints(tmp_path):
    environment = {**os.environ, "KOKATTO_VAR_DIR": str(tmp_path / "var"), **gateway_identity_env()}
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "run_ftps_gateway", "--port", str(port)],
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
    )
    try:
        first_line = process.stdout.readline()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as control:
            control.recv(1024)  # 220
            control.sendall(b"AUTH TLS\r\n")
            assert control.recv(1024).startswith(b"234")
            context = ssl.create_default_context(cadata=environment["FTPS_CERTIFICATE"])
            with context.wrap_socket(control, server_hostname="127.0.0.1") as secure:
                served = ssl.DER_cert_to_PEM_cert(secure.getpeercert(binary_form=True))
    finally:
        process.terminate()
        process.wait(timeout=10)
    expected = openssl_fingerprint(environment["FTPS_CERTIFICATE"])
    assert f"127.0.0.1:{port}" in first_line and expected in first_line
    assert openssl_fingerprint(served) == expected
    assert not (tmp_path / "var" / "ftps_certificate.pem").exists()


def test_check_deploy_refuses_a_gateway_identity_generated_into_var(tmp_path):
    output = manage_check_deploy(tmp_path)

    var = tmp_path / "var"
    for name, file in [
        ("SFTP_HOST_KEY", "sftp_host_key"),
        ("FTPS_CERTIFICATE", "ftps_certificate.pem"),
        ("FTPS_PRIVATE_KEY", "ftps_private_key.pem"),
    ]:
        assert f"(batches.E004) {name} was generated into {var / file}" in output


def test_check_deploy_accepts_a_gateway_identity_set_in_the_environment(tmp_path):
    assert "batches.E004" not in manage_check_deploy(tmp_path, **gateway_identity_env())


def test_a_generated_identity_is_fine_with_debug_on(tmp_path):
    assert "batches.E004" not in manage_check_deploy(tmp_path, DEBUG="true")
