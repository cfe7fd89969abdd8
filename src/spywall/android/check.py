"""Run every Android module over one capture and build the report."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import msgspec

from spywall.android.browser_history import BROWSER_MODULES
from spywall.android.bugreport_modules import BUGREPORT_MODULES
from spywall.android.capture import Capture, open_capture
from spywall.android.dumpsys_modules import DUMPSYS_MODULES
from spywall.android.fs_modules import FS_MODULES
from spywall.android.intrusion_logs import INTRUSION_MODULES
from spywall.android.qf_extra import QF_EXTRA_MODULES
from spywall.android.qf_modules import QF_MODULES
from spywall.device.base import CheckContext, Module
from spywall.device.runner import finish, new_report, run_modules
from spywall.iocs import IocIndex
from spywall.limits import Limits
from spywall.report import IocSource, ModuleRun, Report, Scalar, Subject

MODULES: tuple[Module[Capture], ...] = (*QF_MODULES, *BUGREPORT_MODULES, *DUMPSYS_MODULES,
                                      *FS_MODULES, *BROWSER_MODULES,
                                      *QF_EXTRA_MODULES, *INTRUSION_MODULES)
DEVICE_PROPS: dict[str, str] = {
    "ro.product.manufacturer": "manufacturer", "ro.product.model": "model",
    "ro.build.version.release": "android_version",
    "ro.build.version.security_patch": "security_patch",
    "ro.build.fingerprint": "build_fingerprint",
}
# Device checks read whole captures: allow more time than a single attachment gets.
DEVICE_LIMITS = Limits(seconds=900.0)


class Outcome(msgspec.Struct):
    report: Report
    ctx: CheckContext[Capture]


def _sha256_file(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def device_info(cap: Capture) -> dict[str, Scalar]:
    props = cap.cache.get("props")
    info: dict[str, Scalar] = {"capture": cap.kind}
    if isinstance(props, dict):
        info.update({label: str(props[key]) for key, label in DEVICE_PROPS.items()
                     if key in props})
    return info


def check_capture(path: str | Path, index: IocIndex, sources: Sequence[IocSource] = (),
                  limits: Limits | None = None,
                  modules: Sequence[Module[Capture]] = MODULES,
                  on_done: Callable[[ModuleRun], None] | None = None,
                  password: str | None = None, age_keys: list[str] | None = None) -> Outcome:
    """Check one capture (folder, zip or dumpstate text). ``InputError`` if unreadable.
    ``password``: of an encrypted Android backup in it, or of a passphrase-encrypted
    capture; ``age_keys``: identities for an androidqf capture encrypted with age."""
    report = new_report("check-android")
    report.ioc_sources = list(sources)
    cap = open_capture(path, limits or DEVICE_LIMITS, age_keys=age_keys, passphrase=password)
    cap.password = password
    p = Path(path)
    subject = Subject(path=str(p), format=cap.kind, objects=len(cap.members()),
                      sha256=_sha256_file(p) if p.is_file() else None,
                      size=p.stat().st_size if p.is_file() else None)
    ctx = CheckContext(evidence=cap, index=index, subject=subject, limits=cap.limits)
    try:
        report.modules = run_modules(modules, ctx, on_done)
    finally:
        cap.close()
    report.subjects = [subject]
    report.device = device_info(cap)
    return Outcome(finish(report), ctx)
