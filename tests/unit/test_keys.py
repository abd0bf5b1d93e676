"""Keys from the environment (the encryption key, the audit key): 32 bytes in base64, or a
one-line error that names which key is wrong."""

from __future__ import annotations

import base64

import pytest

from facesearch.errors import ConfigError
from facesearch.governance.audit import parse_key
from facesearch.security.sealing import Sealer


def test_a_good_key_is_its_32_bytes_and_an_unset_one_is_none() -> None:
    raw = bytes(range(32))
    assert parse_key(base64.b64encode(raw).decode()) == raw
    assert parse_key(None) is None and parse_key("") is None
    assert Sealer.from_secret(base64.b64encode(raw).decode()).enabled
    assert not Sealer.from_secret(None).enabled


@pytest.mark.parametrize(
    ("secret", "message"),
    [("not base64!", "is not valid base64"), (base64.b64encode(b"short").decode(), "not 5")],
)
def test_a_bad_key_is_refused_naming_the_key(secret: str, message: str) -> None:
    with pytest.raises(ConfigError, match=f"the audit key .*{message}"):
        parse_key(secret)
    with pytest.raises(ConfigError, match=f"the encryption key .*{message}"):
        Sealer.from_secret(secret)
