"""Which keys are secrets whatever the publisher's flag says (issue 10, low: the list was narrow)."""

from __future__ import annotations

import pytest

from configpipe.values import is_sensitive


@pytest.mark.parametrize(
    "key",
    [
        "db_password",
        "db.pwd",
        "ldap_passwd",
        "orders.dsn",
        "database-connection_string",
        "oauth.client_secret",
        "signing.private_key",
        "auth",
        "upstream.auth.header",
        "tls.cert-key",
        "vault.passphrase",
        "api_token",
    ],
)
def test_named_like_a_secret(key: str) -> None:
    assert is_sensitive(key, None)


@pytest.mark.parametrize(
    "key", ["max_items", "author_display", "authority_url", "dsnless", "feature.oauth_login"]
)
def test_ordinary_names_are_not_secrets(key: str) -> None:
    assert not is_sensitive(key, None)
    assert is_sensitive(key, True)
