"""A small platform world modelled on the 2019 campaign, for the demo, the tests and the
benchmarks: background users, the vendor's accounts, crafted calls and attachments, an
order, and the vendor's return after it.

What is generated, and why:
- background users in many countries on the official clients, each with a device of its
  own; some share a NAT address (one that a vendor account used too), which must never
  link them to the vendor; ordinary calls (answered or not, with clean media captures)
  and messages with ordinary PNG attachments made by Pillow;
- a call-centre dialler (official client) making many unanswered calls with clean
  media, which must never make it or its callees part of anything;
- the vendor's accounts, registered from January 2018 on a non-official client build,
  some sharing a device; from 29 April to 10 May 2019 they place calls that are never
  answered and whose media carries crafted RTCP (CVE-2019-3568) sent from the vendor's
  server named in the court record, and messages carrying a BLASTPASS WebP or a
  FORCEDENTRY PDF known to the registry only by its hash;
- the registry: the vendor, an affiliate, the injunction of 17 October 2025, the server
  addresses and SIP hosts of the court record, and the FORCEDENTRY hash;
- after the order: an old vendor account reconnecting from a barred address, and a new
  account on the same device as an old one that registers and calls a target again.

``generate`` returns the ground truth (``Truth``) the tests compare against. Captures
come from ``spywall.samples.captures`` and attachments from the sample generators, whose
detectors are checked against independent decoders in their own tests.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec

ORDER_DATE = "2025-10-17"
VENDOR_SERVER = "104.223.76.220"
VENDOR_CLIENT = "WIS/1.3.7 Android"
NAT = "192.0.2.77"
# Targets by calling code, as the court exhibit's country list.
TARGET_PHONES = ["+525512340001", "+525512340002", "+525512340003", "+919812340001",
                 "+919812340002", "+97336001001", "+212612340001", "+923001234001",
                 "+6281234500001", "+972521234001", "+447700900001", "+33612340001"]
BACKGROUND_CODES = ["+1202555", "+4420790", "+4915112", "+5511912", "+3491123", "+2348012",
                    "+8190123", "+6142312", "+5215544", "+9199887"]


class Truth(msgspec.Struct):
    actors: list[str]
    targets: list[str]
    violation_events: list[str]
    party: str
    languages: dict[str, str]         # target -> expected notice language
    background: list[str]
    dialler: str
    nat_users: list[str]
    returning_account: str


def _ts(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def registry(forcedentry_sha256: str) -> dict[str, Any]:
    src = "WhatsApp v. NSO Group, court record"
    return {
        "official_clients": ["WA/* iOS", "WA/* Android"],
        "parties": [
            {"id": "nso-group", "name": "NSO Group Technologies", "aliases": ["Q Cyber"],
             "affiliate_of": None,
             "orders": [{"court": "U.S. District Court, N.D. Cal.", "case": "4:19-cv-07123",
                         "date": ORDER_DATE, "scope": "permanent injunction: no access to "
                         "servers, accounts or infrastructure; no targeting of users"}],
             "identifiers": [
                 {"kind": "ip", "value": VENDOR_SERVER, "source": src, "added": "2019-05-13"},
                 {"kind": "ip", "value": "54.93.81.200", "source": src, "added": "2019-05-13"},
                 {"kind": "domain", "value": "sip.nsogroup.com", "source": src,
                  "added": "2019-05-13"},
                 {"kind": "sha256", "value": forcedentry_sha256,
                  "source": "FORCEDENTRY sample hash", "added": "2021-09-13"}]},
            {"id": "q-technologies", "name": "Q Technologies", "aliases": [],
             "affiliate_of": "nso-group", "orders": [],
             "identifiers": [{"kind": "domain", "value": "sip.qtechnologies.com",
                              "source": src, "added": "2019-05-13"},
                             {"kind": "domain", "value": "sip.2access.xyz", "source": src,
                              "added": "2019-05-13"}]}]}


def _crafted_capture() -> bytes:
    from spywall.samples.captures import campaign_call

    return campaign_call(VENDOR_SERVER, "sip.nsogroup.com", "54.93.81.200", "eth").pcap()


def _clean_capture() -> bytes:
    from spywall.samples.captures import ordinary_call

    return ordinary_call("eth").pcap()


def _blastpass() -> bytes:
    from spywall.samples.webp import chunk, plain, riff

    return riff(chunk(b"VP8L", plain()))


def _forcedentry() -> bytes:
    from spywall.samples.pdf_jbig2 import samples

    return next(s.data for s in samples() if s.expected and s.name.endswith(".pdf"))


def _png(seed: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (24, 24), ((seed * 37) % 256, (seed * 91) % 256, 90)).save(out, "PNG")
    return out.getvalue()


class _Writer:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.events: list[dict[str, Any]] = []
        self.n = 0

    def add(self, kind: str, moment: datetime, **fields: Any) -> str:
        self.n += 1
        ident = f"ev-{self.n:06d}"
        self.events.append({"id": ident, "type": kind, "ts": _ts(moment), **fields})
        return ident

    def blob(self, name: str, data: bytes) -> dict[str, Any]:
        path = self.folder / "media" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                "path": f"media/{name}"}


def generate(folder: Path, background_users: int = 40, seed: int = 2019) -> Truth:
    """Write ``events.jsonl``, ``registry.json`` and ``media/`` into ``folder``."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    w = _Writer(folder)
    crafted = w.blob("call-crafted.pcap", _crafted_capture())
    clean = w.blob("call-clean.pcap", _clean_capture())
    blastpass = w.blob("sticker.webp", _blastpass())
    forced = _forcedentry()
    forced_sha = hashlib.sha256(forced).hexdigest()
    start = datetime(2018, 1, 8, 9, 0, tzinfo=UTC)

    background = [f"user-{i:04d}" for i in range(background_users)]
    nat_users = background[:3]
    for i, user in enumerate(background):
        code = BACKGROUND_CODES[i % len(BACKGROUND_CODES)]
        w.add("account.registered", start + timedelta(hours=i), account=user,
              phone=f"{code}{i:05d}", ip=NAT if user in nat_users else f"203.0.113.{i % 250}",
              device=f"phone-{user}", client=f"WA/2.19.{rng.randint(10, 60)} "
              f"{'iOS' if i % 2 else 'Android'}")
    targets = [f"target-{i:02d}" for i in range(len(TARGET_PHONES))]
    for i, (target, phone) in enumerate(zip(targets, TARGET_PHONES, strict=True)):
        w.add("account.registered", start + timedelta(days=2, hours=i), account=target,
              phone=phone, ip=f"198.18.0.{i + 1}", device=f"phone-{target}",
              client="WA/2.19.40 iOS" if i % 2 else "WA/2.19.41 Android")
    dialler = "dialler-centre"
    w.add("account.registered", start + timedelta(days=3), account=dialler,
          phone="+12025550100", ip="198.51.100.99", device="pbx-1",
          client="WA/2.19.44 Android")
    vendors = [f"wis-{i}" for i in range(1, 6)]
    devices = ["rig-a", "rig-a", "rig-b", "rig-b", "rig-c"]
    for i, (account, device) in enumerate(zip(vendors, devices, strict=True)):
        w.add("account.registered", start + timedelta(days=30 * i + 5), account=account,
              phone=f"+3579912340{i}", ip=NAT if i == 4 else f"198.51.100.{20 + i}",
              device=device, client=VENDOR_CLIENT)

    # Ordinary traffic through April-May 2019: calls, messages, the dialler.
    day = datetime(2019, 4, 25, 8, 0, tzinfo=UTC)
    for i in range(background_users * 2):
        a, b = rng.sample(background, 2)
        moment = day + timedelta(minutes=17 * i)
        call = f"call-bg-{i}"
        w.add("call.offered", moment, call=call, caller=a, callee=b, ip=f"203.0.113.{i % 250}")
        if i % 3:
            w.add("call.answered", moment + timedelta(seconds=5), call=call)
        w.add("call.media", moment + timedelta(seconds=30), call=call, capture=clean["path"])
        w.add("call.ended", moment + timedelta(seconds=60), call=call)
        if i % 4 == 0:
            w.add("message.sent", moment + timedelta(minutes=3), message=f"msg-bg-{i}",
                  sender=b, recipients=[a], ip=f"203.0.113.{(i * 7) % 250}",
                  attachments=[w.blob(f"photo-{i}.png", _png(i))])
    for i in range(25):
        moment = day + timedelta(hours=i)
        call = f"call-dial-{i}"
        w.add("call.offered", moment, call=call, caller=dialler,
              callee=background[(i * 5) % len(background)], ip="198.51.100.99")
        w.add("call.media", moment + timedelta(seconds=20), call=call, capture=clean["path"])
        w.add("call.ended", moment + timedelta(seconds=40), call=call)

    # The campaign: 29 April - 10 May 2019.
    attack = datetime(2019, 4, 29, 6, 0, tzinfo=UTC)
    for i, target in enumerate(targets):
        vendor = vendors[i % 4]
        moment = attack + timedelta(hours=20 * i)
        call = f"call-zc-{i}"
        w.add("call.offered", moment, call=call, caller=vendor, callee=target,
              ip=f"198.51.100.{20 + i % 4}")
        w.add("call.media", moment + timedelta(seconds=2), call=call, capture=crafted["path"])
        w.add("call.ended", moment + timedelta(seconds=30), call=call)
    w.add("message.sent", attack + timedelta(days=3), message="msg-bp-1", sender=vendors[2],
          recipients=[targets[0]], ip="198.51.100.22", attachments=[blastpass])
    w.add("message.sent", attack + timedelta(days=4), message="msg-fe-1", sender=vendors[3],
          recipients=[targets[5]], ip="198.51.100.23",
          attachments=[{"sha256": forced_sha, "size": len(forced)}])

    # After the order: an old account back from a barred address; a new account on an
    # old account's device registers and calls a target again.
    back = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
    violations = [w.add("account.connected", back, account=vendors[0], ip=VENDOR_SERVER,
                        device="rig-a", client=VENDOR_CLIENT)]
    returning = "wis-6"
    violations.append(w.add("account.registered", back + timedelta(days=1),
                            account=returning, phone="+35799123499", ip="198.51.100.40",
                            device="rig-b", client="WIS/1.4.0 Android"))
    violations.append(w.add("call.offered", back + timedelta(days=1, hours=2),
                            call="call-zc-return", caller=returning, callee=targets[1],
                            ip="198.51.100.40"))
    w.add("call.media", back + timedelta(days=1, hours=2, seconds=2), call="call-zc-return",
          capture=crafted["path"])
    # Events before the order are not violations (a control in the same file).
    w.add("account.connected", datetime(2025, 10, 16, 23, 59, 59, tzinfo=UTC),
          account=vendors[1], ip="198.51.100.21", device="rig-a", client=VENDOR_CLIENT)

    (folder / "registry.json").write_text(json.dumps(registry(forced_sha), indent=2))
    with (folder / "events.jsonl").open("w", encoding="utf-8") as fh:
        for ev in sorted(w.events, key=lambda e: (e["ts"], e["id"])):
            fh.write(json.dumps(ev, ensure_ascii=False) + "\n")
    from spywall.platform.notify import language_of

    phones = dict(zip(targets, TARGET_PHONES, strict=True))
    return Truth(actors=sorted([*vendors, returning]), targets=sorted(targets),
                 violation_events=sorted(violations), party="nso-group",
                 languages={t: language_of(p) for t, p in phones.items()},
                 background=background, dialler=dialler, nat_users=nat_users,
                 returning_account=returning)


def background_stream(count: int, seed: int = 7, start_index: int = 0) -> Iterator[bytes]:
    """``count`` background events as JSON lines, quickly, without media: registrations,
    connections, calls and hash-only messages among a growing user base (benchmarks)."""
    rng = random.Random(seed)
    base = datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    users = max(1000, count // 20)
    encoder = msgspec.json.Encoder()
    for i in range(start_index, start_index + count):
        ts = _ts(datetime.fromtimestamp(base + i * 0.05, UTC))
        user = f"u{rng.randrange(users)}"
        kind = i % 10
        if kind == 0:
            ev: dict[str, Any] = {"id": f"bg{i}", "type": "account.registered", "ts": ts,
                                  "account": f"n{i}", "phone": f"+1555{i:08d}",
                                  "ip": f"10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}",
                                  "device": f"d{i}", "client": "WA/2.24.1 Android"}
        elif kind < 4:
            ev = {"id": f"bg{i}", "type": "account.connected", "ts": ts, "account": user,
                  "ip": f"10.1.{(i >> 8) & 255}.{i & 255}", "device": f"d-{user}",
                  "client": "WA/2.24.1 iOS"}
        elif kind < 7:
            ev = {"id": f"bg{i}", "type": "call.offered", "ts": ts, "call": f"c{i}",
                  "caller": user, "callee": f"u{rng.randrange(users)}",
                  "ip": f"10.2.{(i >> 8) & 255}.{i & 255}"}
        elif kind < 8:
            ev = {"id": f"bg{i}", "type": "call.answered", "ts": ts, "call": f"c{i - 2}"}
        else:
            ev = {"id": f"bg{i}", "type": "message.sent", "ts": ts, "message": f"m{i}",
                  "sender": user, "recipients": [f"u{rng.randrange(users)}"],
                  "ip": f"10.3.{(i >> 8) & 255}.{i & 255}",
                  "attachments": [{"sha256": hashlib.sha256(b"%d" % (i % 5000)).hexdigest(),
                                   "size": 1000}]}
        yield encoder.encode(ev) + b"\n"


def main(argv: list[str] | None = None) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="python -m spywall.platform.world",
                                description="write a platform world modelled on 2019")
    p.add_argument("out", type=Path)
    p.add_argument("--users", type=int, default=40, help="background users")
    p.add_argument("--events", type=int, default=0,
                   help="also write this many background events (no media) to "
                        "background.jsonl, for benchmarks")
    args = p.parse_args(argv)
    truth = generate(args.out, args.users)
    if args.events:
        with (args.out / "background.jsonl").open("wb") as fh:
            fh.writelines(background_stream(args.events))
    sys.stdout.write(msgspec.json.encode(truth).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
