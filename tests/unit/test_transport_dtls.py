"""The DTLS plumbing shared by the server's terminator and the emulator's tunnel (transport.dtls)."""

from __future__ import annotations

from mbedtls import tls

from transport import dtls


def _record(content_type: int, epoch: bytes, body: bytes) -> bytes:
    return bytes([content_type]) + b"\xfe\xfd" + epoch + b"\x00" * 6 + len(body).to_bytes(2, "big") + body


def test_a_client_hello_is_an_epoch_0_handshake_record_of_type_1() -> None:
    hello = _record(dtls.CONTENT_HANDSHAKE, b"\x00\x00", bytes([dtls.HANDSHAKE_CLIENT_HELLO]) + b"\x00" * 11)
    assert dtls.looks_like_client_hello(hello)
    assert not dtls.looks_like_client_hello(hello[:20])
    assert not dtls.looks_like_client_hello(_record(dtls.CONTENT_HANDSHAKE, b"\x00\x01", hello[13:]))


def test_a_plaintext_alert_gives_its_description() -> None:
    assert dtls.plaintext_alert(_record(dtls.CONTENT_ALERT, b"\x00\x00", b"\x02\x73")) == 115
    assert dtls.plaintext_alert(_record(dtls.CONTENT_ALERT, b"\x00\x01", b"\x02\x73")) is None


def test_the_configuration_is_dtls_1_2_psk_with_bounded_retransmission() -> None:
    config = dtls.configuration(dtls.DEFAULT_CIPHERS, 30.0, pre_shared_key=("id", b"key"))
    assert config.lowest_supported_version is tls.DTLSVersion.DTLSv1_2
    assert config.highest_supported_version is tls.DTLSVersion.DTLSv1_2
    assert (config.handshake_timeout_min, config.handshake_timeout_max) == (1.0, 30.0)
    assert config.pre_shared_key == ("id", b"key")
    short = dtls.configuration(dtls.DEFAULT_CIPHERS, 0.5, pre_shared_key_store={})
    assert (short.handshake_timeout_min, short.handshake_timeout_max) == (0.5, 0.5)
    assert set(dtls.DEFAULT_CIPHERS) <= dtls.AVAILABLE_CIPHERS
