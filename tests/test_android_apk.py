"""APK signing certificates: v2/v3 signing blocks, v1 PKCS#7, hostile blocks."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from spywall.android.apk import certificate_hashes, signing_block
from spywall.android.check import check_capture
from spywall.errors import SpywallError
from spywall.iocs import IocIndex
from spywall.samples import android as gen


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_v2_block_certificates() -> None:
    a, b = gen.fake_certificate("Alpha"), gen.fake_certificate("Beta")
    data = gen.apk("com.x", [a, b])
    assert zipfile.ZipFile(io.BytesIO(data)).testzip() is None  # still a valid zip
    assert certificate_hashes(data) == [_sha(a), _sha(b)]
    assert set(signing_block(data)) == {0x7109871A}


def test_v3_and_unknown_ids() -> None:
    cert = gen.fake_certificate("Gamma")
    base = gen.apk("com.y")
    block = gen.signing_block([cert], scheme=0xF05368C0)
    eocd = base.rfind(b"PK\x05\x06")
    cd = int.from_bytes(base[eocd + 16 : eocd + 20], "little")
    data = (base[:cd] + block + base[cd:eocd + 16] + (cd + len(block)).to_bytes(4, "little")
            + base[eocd + 20:])
    assert certificate_hashes(data) == [_sha(cert)]
    other = gen.signing_block([cert], scheme=0x42726577)  # a padding-like id: ignored
    data2 = (base[:cd] + other + base[cd:eocd + 16] + (cd + len(other)).to_bytes(4, "little")
             + base[eocd + 20:])
    assert certificate_hashes(data2) == []


def _v1_apk() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test Signer")])
    start = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(7).not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=3650))
            .sign(key, hashes.SHA256()))
    sig = (pkcs7.PKCS7SignatureBuilder().set_data(b"Signature-Version: 1.0\r\n")
           .add_signer(cert, key, hashes.SHA256())
           .sign(serialization.Encoding.DER, [pkcs7.PKCS7Options.DetachedSignature]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("AndroidManifest.xml", b"<manifest/>")
        zf.writestr("META-INF/CERT.SF", b"Signature-Version: 1.0\r\n")
        zf.writestr("META-INF/CERT.EC", sig)
    return buf.getvalue(), cert.public_bytes(serialization.Encoding.DER)


def test_v1_pkcs7_certificate() -> None:
    data, der = _v1_apk()
    assert certificate_hashes(data) == [_sha(der)]


def test_apks_module_matches_certificate(tmp_path: Path) -> None:
    cert = gen.fake_certificate("Evil Signer")
    ev = gen.write_tree(gen.androidqf_files(False), tmp_path / "ev")
    (ev / "apks").mkdir()
    (ev / "apks" / "com.evil.apk").write_bytes(gen.apk("com.evil", [cert]))
    bundle = {"type": "bundle", "objects": [
        {"type": "malware", "id": "malware--1", "name": "EvilSpy"},
        {"type": "indicator", "id": "indicator--1",
         "pattern": f"[app:cert.sha256 = '{_sha(cert).upper()}']"},
        {"type": "relationship", "relationship_type": "indicates",
         "source_ref": "indicator--1", "target_ref": "malware--1"}]}
    (tmp_path / "i.stix2").write_text(json.dumps(bundle))
    rep = check_capture(ev, IocIndex.load([tmp_path / "i.stix2"])).report
    got = [(f.location.module, f.rule, f.indicator.collection if f.indicator else None)
           for f in rep.all_findings()]
    assert got == [("apks", "ioc-app-cert", "EvilSpy")]


def _block_start(data: bytes) -> int:
    magic = data.rfind(b"APK Sig Block 42")
    size = int.from_bytes(data[magic - 8 : magic], "little")
    return magic + 16 - size - 8


@pytest.mark.parametrize(("offset", "value", "error"), [
    (0, b"\x99", "sizes differ"),                      # leading size differs from trailing
    (8, b"\xff\xff\xff\x7f", "entry length"),            # pair length past the block
    (8 + 8 + 4 + 4 + 4 + 4, b"\xff\xff\xff\xff", "need"),  # signed-data length past its signer
])
def test_damaged_blocks_raise_format_errors(offset: int, value: bytes, error: str) -> None:
    data = bytearray(gen.apk("com.x", [gen.fake_certificate("A")]))
    at = _block_start(bytes(data)) + offset
    data[at : at + len(value)] = value
    with pytest.raises(SpywallError, match=error):
        certificate_hashes(bytes(data))


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=16), st.integers(0, 1 << 16))
def test_mutated_apks_only_spywall_errors(noise: bytes, at: int) -> None:
    data = gen.apk("com.x", [gen.fake_certificate("A"), gen.fake_certificate("B")])
    at %= len(data)
    mutated = data[:at] + noise + data[at + len(noise):]
    with contextlib.suppress(SpywallError):
        certificate_hashes(mutated)
