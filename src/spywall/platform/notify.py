"""Notifications: one per target per campaign, never to an actor, in the target's
language (chosen from the calling code of the phone number), through a pluggable sender
with an outbox, statuses and retries.

The text follows the notice the platform sent in 2019, and points to help: Access Now's
Digital Security Helpline, which answers at-risk people in many languages at no cost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol

import sqlalchemy as sa

from spywall.platform import db
from spywall.platform.evidence_hook import entry, record

HELPLINE = "https://www.accessnow.org/help/"
MAX_ATTEMPTS = 5

TEXTS: dict[str, str] = {
    "en": ("An advanced cyber actor may have targeted this account with spyware that "
           "needs no tap to install. Update the app and your phone now, turn on Lockdown "
           "Mode if your phone has it, and keep this message. Free, confidential help: "
           "{helpline}"),
    "es": ("Un actor cibernético avanzado puede haber atacado esta cuenta con software "
           "espía que se instala sin ningún toque. Actualice la aplicación y su teléfono "
           "ahora, active el Modo de Aislamiento si su teléfono lo tiene y conserve este "
           "mensaje. Ayuda gratuita y confidencial: {helpline}"),
    "ar": ("ربما استهدف طرف إلكتروني متقدم هذا الحساب ببرنامج تجسس يُثبَّت دون أي نقرة. "
           "حدّث التطبيق وهاتفك الآن، وفعّل وضع المنع إن كان متاحًا، واحتفظ بهذه الرسالة. "
           "مساعدة مجانية وسرية: {helpline}"),
    "fr": ("Un acteur informatique avancé a peut-être visé ce compte avec un logiciel "
           "espion qui s'installe sans aucun geste. Mettez à jour l'application et votre "
           "téléphone maintenant, activez le mode Isolement si votre téléphone le permet, "
           "et conservez ce message. Aide gratuite et confidentielle : {helpline}"),
    "hi": ("एक उन्नत साइबर हमलावर ने इस खाते को ऐसे स्पाइवेयर से निशाना बनाया हो सकता है "
           "जिसे इंस्टॉल होने के लिए किसी टैप की ज़रूरत नहीं होती। ऐप और अपना फ़ोन अभी अपडेट "
           "करें, फ़ोन में हो तो लॉकडाउन मोड चालू करें, और यह संदेश सँभालकर रखें। मुफ़्त, "
           "गोपनीय सहायता: {helpline}"),
    "pt": ("Um agente cibernético avançado pode ter atacado esta conta com spyware que se "
           "instala sem nenhum toque. Atualize o aplicativo e o telefone agora, ative o "
           "Modo de Isolamento se o seu telefone tiver e guarde esta mensagem. Ajuda "
           "gratuita e confidencial: {helpline}"),
    "id": ("Aktor siber canggih mungkin telah menargetkan akun ini dengan spyware yang "
           "terpasang tanpa satu ketukan pun. Perbarui aplikasi dan ponsel Anda sekarang, "
           "aktifkan Mode Penguncian jika ada, dan simpan pesan ini. Bantuan gratis dan "
           "rahasia: {helpline}"),
}

# Region (ISO 3166) -> language of the notice; every other region gets English.
_LANG_REGIONS = {
    "es": "ES MX AR CO PE VE CL EC GT CU BO DO HN PY SV NI CR PA UY GQ",
    "ar": "SA AE BH QA KW OM YE JO SY LB IQ PS EG LY TN DZ MA SD MR",
    "fr": "FR BE LU MC SN CI ML BF NE GN TG BJ CM GA CG CD CF TD MG DJ KM HT RW BI",
    "hi": "IN",
    "pt": "PT BR AO MZ CV GW ST TL",
    "id": "ID",
}
LANGUAGE_OF_REGION = {r: lang for lang, regions in _LANG_REGIONS.items()
                      for r in regions.split()}


def country_of(phone: str | None) -> str:
    """ISO region of an E.164 number from its calling code ("??" when unknown)."""
    if not phone:
        return "??"
    import phonenumbers

    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return "??"
    region = phonenumbers.region_code_for_number(number) or \
        phonenumbers.region_code_for_country_code(number.country_code or 0)
    return region if region and region != "ZZ" else "??"


def language_of(phone: str | None) -> str:
    return LANGUAGE_OF_REGION.get(country_of(phone), "en")


def text_for(language: str) -> str:
    return TEXTS.get(language, TEXTS["en"]).format(helpline=HELPLINE)


def now_us() -> int:
    return time.time_ns() // 1000


def queue_notifications(conn: sa.Connection, campaign: str, targets: Iterable[str]) -> int:
    """One pending notification per target of ``campaign`` not yet queued; never to an
    account that is itself an actor (under a ban, proposed or applied, or denied)."""
    n, a, b = db.notifications, db.accounts, db.bans
    targets = list(targets)
    if not targets:
        return 0
    have: set[str] = set()
    actors: set[str] = set()
    phones: dict[str, str | None] = {}
    for i in range(0, len(targets), 900):
        chunk = targets[i:i + 900]
        have.update(conn.execute(sa.select(n.c.target).where(
            n.c.campaign == campaign, n.c.target.in_(chunk))).scalars())
        actors.update(conn.execute(sa.select(b.c.account).where(b.c.account.in_(chunk))
                                   ).scalars())
        for r in conn.execute(sa.select(a.c.account, a.c.phone, a.c.registration_denied)
                              .where(a.c.account.in_(chunk))):
            phones[r.account] = r.phone
            if r.registration_denied:
                actors.add(r.account)
    now = now_us()
    rows = []
    for target in targets:
        if target in have or target in actors:
            continue
        lang = language_of(phones.get(target))
        rows.append({"target": target, "campaign": campaign, "language": lang,
                     "status": "pending", "attempts": 0, "text": text_for(lang),
                     "created_us": now, "updated_us": now})
    db.insert_ignore(conn, n, rows)
    record(conn, [entry("notification", now, target=r["target"], campaign=campaign,
                        language=r["language"], status="pending") for r in rows])
    return len(rows)


class Sender(Protocol):
    def send(self, notice: dict[str, Any]) -> None:
        """Deliver one notice; raise ``OSError`` (or a subclass) when it did not go."""


class FileSender:
    """Appends each notice as a JSON line to a file (for a platform's own mailer)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def send(self, notice: dict[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(notice, ensure_ascii=False) + "\n")


class WebhookSender:
    """POSTs each notice as JSON to a URL; any answer but 2xx is a failure to retry."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url, self.timeout = url, timeout

    def send(self, notice: dict[str, Any]) -> None:
        import httpx

        try:
            answer = httpx.post(self.url, json=notice, timeout=self.timeout)
        except httpx.HTTPError as exc:
            raise OSError(f"webhook: {exc}") from None
        if not 200 <= answer.status_code < 300:
            raise OSError(f"webhook answered {answer.status_code}")


def sender_for(spec: str) -> Sender:
    """``webhook:URL`` (or a bare http(s) URL) or ``file:PATH``."""
    if spec.startswith(("http://", "https://")):
        return WebhookSender(spec)
    kind, _, rest = spec.partition(":")
    if kind == "webhook" and rest:
        return WebhookSender(rest)
    if kind == "file" and rest:
        return FileSender(Path(rest))
    raise ValueError(f"unknown sender {spec!r} (webhook:URL or file:PATH)")


def deliver(engine: sa.Engine, sender: Sender, max_attempts: int = MAX_ATTEMPTS) -> dict[str, int]:
    """Send every pending notice (and retry failed ones under ``max_attempts``); each
    status change is committed with its log entry before the next notice goes."""
    n = db.notifications
    counts = {"sent": 0, "failed": 0}
    with engine.connect() as conn:
        todo = conn.execute(sa.select(n).where(
            n.c.status.in_(("pending", "failed")), n.c.attempts < max_attempts)
            .order_by(n.c.id)).all()
    for row in todo:
        notice = {"target": row.target, "campaign": row.campaign, "language": row.language,
                  "text": row.text, "helpline": HELPLINE}
        try:
            sender.send(notice)
            status, error = "sent", None
        except OSError as exc:
            status, error = "failed", str(exc)[:500]
        now = now_us()
        with engine.begin() as conn:
            conn.execute(n.update().where(n.c.id == row.id).values(
                status=status, attempts=row.attempts + 1, last_error=error, updated_us=now))
            record(conn, [entry("notification", now, target=row.target,
                                campaign=row.campaign, language=row.language,
                                status=status, attempt=row.attempts + 1, error=error)])
        counts[status] += 1
    return counts
