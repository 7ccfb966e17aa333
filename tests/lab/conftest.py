"""Fixtures shared by the lab tests: one certificate set and a client context that trusts it."""

from __future__ import annotations

import ssl

import pytest

from smtpdiag.lab.certs import CertificateFiles, write_certificates


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> CertificateFiles:
    return write_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def client_context(certificates: CertificateFiles) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certificates.ca_file))
