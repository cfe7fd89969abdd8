"""Every rule id a report can carry, with what it means: ``spywall explain RULE``.

Built from the data the findings come from: the detector metadata in the registry (the
module docstring states the exact condition), the VoIP rule table, the capture rules and
the indicator kinds; the device checks' heuristics, which name their rule where they fire,
are described here (a test checks that every rule id the code can report is here).

Each explanation tells the story a person needs: what the rule saw, how sure it is (its
kind and severity), what to do next, and where to read more.
"""

from __future__ import annotations

import textwrap
from functools import cache

import msgspec

from spywall.report import FindingKind, Severity

H, E, IND = FindingKind.HEURISTIC, FindingKind.EXPLOIT, FindingKind.INDICATOR
NVD = "https://nvd.nist.gov/vuln/detail/"
HELPLINE = "https://www.accessnow.org/help/"
LOCKDOWN = "https://support.apple.com/en-us/105120"

# How sure a kind of finding is, and what to do about it.
CERTAINTY: dict[FindingKind, str] = {
    IND: "a match of a published indicator of a spyware campaign: strong evidence",
    E: "the trigger structure of a known exploit: the file is crafted to attack",
    H: "unusual, worth a look: not proof on its own",
}
NEXT_STEPS: dict[FindingKind, str] = {
    IND: "Treat the device or file as compromised. Stop using it for sensitive work, keep "
         "the evidence (this report and the files or backup), turn on Lockdown Mode on an "
         "iPhone, and contact a digital-security helpline such as Access Now's Digital "
         "Security Helpline.",
    E: "Do not open the file; keep it as evidence. Update the device's software and turn "
       "on Lockdown Mode on an iPhone. If you may be a target, contact a digital-security "
       "helpline such as Access Now's Digital Security Helpline.",
    H: "Have an expert look at it, with this report; keep the evidence. On its own it does "
       "not mean the device is compromised.",
}


class RuleInfo(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    title: str
    kind: FindingKind
    severity: Severity | None  # None: varies with the indicator or the finding
    description: str
    cves: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    source: str = ""

    def read_more(self) -> list[str]:
        refs = [*self.references, *(NVD + c for c in self.cves), HELPLINE]
        if self.kind != H:
            refs.append(LOCKDOWN)
        return list(dict.fromkeys(refs))


def _device(rule: str, title: str, description: str, severity: Severity,
            kind: FindingKind = H, refs: tuple[str, ...] = ()) -> RuleInfo:
    return RuleInfo(id=rule, title=title, kind=kind, severity=severity,
                    description=description, references=refs, source="device check")


_TRIANGULATION = ("https://securelist.com/operation-triangulation/109842/",
                  "https://github.com/KasperskyLab/triangle_check")
_ISHUTDOWN = ("https://securelist.com/shutdown-log-lightweight-ios-malware-detection-method/"
              "111734/",)
DEVICE_RULES: tuple[RuleInfo, ...] = (
    _device("ios-outdated", "Outdated iOS version",
            "The backup's iOS version is older than the newest release this spywall build "
            "knows of: exploited vulnerabilities fixed since may be open.", Severity.LOW),
    _device("ios-fast-cross-domain-redirect", "Fast cross-domain redirect in Safari",
            "Safari history shows a visit to one site redirected to another site within "
            "a second; exploit links often bounce through a redirector (medium, as MVT).",
            Severity.MEDIUM),
    _device("ios-webkit-suspicious-redirect", "Redirect between suspicious domains",
            "WebKit's browsing-session resource log has an entry whose site, or a site it "
            "redirected from or to, matches a spyware indicator: the redirect path around "
            "it (sources, origin, destinations) is named, as MVT's "
            "webkit_session_resource_log module raises it beside each match (high).",
            Severity.HIGH),
    _device("ios-shutdown-unusual-path", "Process running from an unusual folder",
            "Shutdown.log shows a process still running at shutdown from /private/var/db/ "
            "or /private/var/tmp/, where no Apple process runs and Pegasus processes were "
            "found.", Severity.MEDIUM, refs=_ISHUTDOWN),
    _device("ios-sms-attachment-in-tmp", "iMessage attachment stored in /var/tmp",
            "An iMessage attachment lives in /var/tmp/com.apple.messages and ends in -1, "
            "where FORCEDENTRY-era Pegasus exploits left their payloads.", Severity.MEDIUM),
    _device("ios-datausage-orphan-usage", "Network use by a process with no record",
            "DataUsage.sqlite counts network traffic for a process whose ZPROCESS record "
            "is gone; spyware has removed its own entries (MVT: a manipulated process "
            "entry, high).", Severity.HIGH),
    _device("triangulation-backupagent-network",
            "Operation Triangulation: BackupAgent used the network",
            "DataUsage shows the process BackupAgent with network traffic; the legitimate "
            "backup daemon is BackupAgent2. The key Operation Triangulation indicator.",
            Severity.CRITICAL, IND, _TRIANGULATION),
    _device("triangulation-event-window", "Operation Triangulation event pattern",
            "Within minutes: an SMS attachment folder created, com.apple.ImageIO.plist "
            "modified and location-services files changed: the pattern of the "
            "Triangulation iMessage chain.", Severity.MEDIUM, refs=_TRIANGULATION),
    _device("android-outdated-patch", "Security patches out of date",
            "The phone's security patch level is more than six months (6 x 31 days) old: "
            "known exploits may work (medium, as MVT).", Severity.MEDIUM),
    _device("android-root-app", "Root management app installed",
            "A rooting tool is installed: the phone is (or was) rooted, which disables "
            "Android's sandbox protections.", Severity.MEDIUM),
    _device("android-sideloaded-app", "App installed outside an app store",
            "An app was installed by a package installer (a downloaded APK; a system app "
            "updated that way too) or, not a system app, with no installer recorded, not "
            "from an app store: check that you installed it yourself (medium, as MVT).",
            Severity.MEDIUM),
    _device("android-third-party-store-app", "App installed from a third-party store",
            "An app was installed by an app store other than Google Play (F-Droid, Aurora "
            "and other stores' clients): not a sign of spyware, said so that a person "
            "knows where the phone's apps came from (information, as MVT; does not set "
            "exit status 1).", Severity.INFO),
    _device("android-adb-key-invalid", "Invalid trusted adb key",
            "A key the phone trusts for adb is not a valid key (low, as MVT).", Severity.LOW),
    _device("android-adb-key-unverified", "Trusted adb host not compared",
            "The phone trusts a computer for adb and the androidqf capture records no host "
            "key of its own to tell whether it is the capture's computer (low, as MVT).",
            Severity.LOW),
    _device("android-adb-key-other-host", "Phone trusts another computer for adb",
            "The phone trusts a computer for adb that is not the one that made the "
            "androidqf capture: that computer can install apps and read data over USB; "
            "check whose it is (low, as MVT).", Severity.LOW),
    _device("android-adb-key-old-connection", "Capture computer trusted earlier",
            "The computer that made the androidqf capture was last connected a day or more "
            "before the capture: it was trusted before (information, as MVT).",
            Severity.INFO),
    _device("android-tmp-executable", "Executable in a temporary folder",
            "An executable file in /data/local/tmp, where exploits and spyware droppers "
            "put their binaries (high, as MVT).", Severity.HIGH),
    _device("android-tmp-file", "File in a temporary folder",
            "A file in /data/local/tmp, where exploits and spyware droppers stage their "
            "files (and adb users leave theirs): MVT's suspicious path (high, as MVT).",
            Severity.HIGH),
    _device("android-il-cert-validation-failure", "Certificate validation failure",
            "Android's intrusion log records a certificate that failed to validate: a "
            "connection may have been intercepted (MVT raises it).", Severity.MEDIUM),
    _device("android-il-key-integrity-violation", "Key integrity violation",
            "Android's intrusion log records a keystore key whose integrity check failed: "
            "key material may have been tampered with (MVT raises it).", Severity.MEDIUM),
    _device("android-il-cert-authority-installed", "Certificate authority installed",
            "Android's intrusion log records a CA certificate installed: whoever holds its "
            "key can read the phone's encrypted traffic (MVT raises it).", Severity.MEDIUM),
    _device("android-il-wipe-failure", "Device wipe failure",
            "Android's intrusion log records a wipe that failed (MVT raises it).",
            Severity.MEDIUM),
    _device("android-il-crypto-self-test-completed", "Cryptographic self test failed",
            "Android's intrusion log records a failed self test of the cryptographic "
            "module (MVT raises it).", Severity.MEDIUM),
    _device("android-accessibility-enabled", "Accessibility service enabled",
            "An accessibility service is switched on: it reads the screen and acts for the "
            "user, which stalkerware and banking trojans use; MVT raises it too.",
            Severity.MEDIUM),
    _device("android-accessibility-unnamed-services",
            "Accessibility services the dump does not name",
            "The accessibility dump states a user's installed service count "
            "(installedServiceCount) larger than the services it names: the rest cannot "
            "be checked against indicators (low, as MVT).", Severity.LOW),
    _device("ios-process-binary-missing", "Program of a process not found",
            "A filesystem dump's network-use database names a process (not an app) whose "
            "program no file of the dump bears: it was deleted, as spyware removes itself, "
            "or lies outside what was extracted. MVT raises it too.", Severity.MEDIUM),
    _device("android-setuid-file", "Set-user-ID file",
            "A set-user-ID or set-group-ID file in the phone's file list: Android has "
            "shipped no such programs since 4.3, so one is left by rooting tools or by "
            "exploits that keep root.", Severity.MEDIUM),
    _device("android-system-rw-mount", "System partition mounted read-write",
            "A system partition (/system, /vendor, /product, /system_ext) is mounted "
            "read-write: the phone is rooted or its system was modified, as implants that "
            "persist do.", Severity.HIGH),
    _device("android-suspicious-mount-options", "Suspicious system mount options",
            "A system partition is mounted with remount, noatime or nodiratime where stock "
            "phones do not: a sign of a modified system (MVT's rule, medium as MVT "
            "2026.x raises it).", Severity.MEDIUM),
    _device("android-privileged-crash", "Crash of a privileged process",
            "A process running as root, system or the adb shell crashed (a tombstone): "
            "exploits that fail crash the process they attack. Look at the tombstone with "
            "an expert; system processes also crash for ordinary reasons.", Severity.MEDIUM),
    _device("android-magisk-module", "Magisk module installed",
            "A Magisk module is on the phone: the phone is rooted with Magisk, and the "
            "module changes the system at every boot with root rights.", Severity.MEDIUM),
    _device("android-protection-app-disabled", "Security or update app disabled",
            "A manufacturer's security agent or the system update client is disabled: the "
            "phone may miss protections or security updates (medium, as MVT).",
            Severity.MEDIUM),
    _device("android-root-binary", "Root binary present",
            "An su or other root binary was found on the phone (high, as MVT).",
            Severity.HIGH),
    _device("android-app-downgraded", "App downgraded",
            "The battery statistics show an app going back to an older version: a "
            "downgrade can bring back a version with a known vulnerability.",
            Severity.MEDIUM),
    _device("android-app-uninstalled", "App removed",
            "The battery statistics record an app removed from the phone: spyware removes "
            "itself when it is done or found; check that you know the app.", Severity.LOW),
    _device("android-risky-appop", "Risky app permission recorded",
            "An app holds a risky app-op (installing other apps, drawing over others, "
            "reading notifications...): check that you allowed it.", Severity.MEDIUM),
    _device("android-shell-appop", "App-ops recorded for the adb shell",
            "The adb shell used app-ops: someone ran commands on the phone over USB or "
            "network debugging.", Severity.MEDIUM),
    _device("ios-app-not-from-app-store", "App not installed from the App Store",
            "An app was installed neither from the App Store nor by device management: an "
            "enterprise or developer install, the way spyware is sideloaded onto an "
            "iPhone.", Severity.MEDIUM),
    _device("ios-app-no-bundle-id", "App with no bundle id in its store metadata",
            "An app's iTunesMetadata has no softwareVersionBundleId, which the App Store "
            "always writes: the metadata was made by something else (medium, as MVT).",
            Severity.MEDIUM),
    _device("ios-apple-threat-notification", "Apple threat notification received",
            "A message on the phone is Apple's threat notification: Apple believes the "
            "iPhone was targeted by mercenary spyware. Follow Apple's advice, turn on "
            "Lockdown Mode, keep the evidence and ask a helpline such as Access Now's for "
            "help.", Severity.HIGH, refs=("https://support.apple.com/en-us/102174",)),
    _device("ios-datausage-missing-process", "Process records missing from network use",
            "Process records in the network-use database are numbered in order and some "
            "are missing: records were deleted, as spyware that cleans up after itself "
            "does.", Severity.LOW),
    _device("ios-quadream-calendar-event", "Calendar event shaped as Quadream's",
            "A calendar event titled 'Meeting' with the description 'Notes': the shape of "
            "the iCloud calendar invitations that delivered Quadream's ENDOFDAYS exploit "
            "(high, as MVT).", Severity.HIGH,
            refs=("https://citizenlab.ca/2023/04/spyware-vendor-quadream-exploits-victims-"
                  "customers/",)),
    _device("ios-idstatuscache-nul", "iMessage lookup with NUL characters",
            "An iMessage / FaceTime lookup (IDStatusCache) whose address holds two NUL "
            "characters in a row, a pattern of lookups made by exploits (high, as MVT).",
            Severity.HIGH),
    _device("ios-profile-notification-settings",
            "Configuration profile that manages notifications",
            "An installed configuration profile whose first payload sets notification "
            "settings: a profile can silence an app's notifications (medium, as MVT).",
            Severity.MEDIUM),
    _device("ios-lockdown-mode-off", "Lockdown Mode disabled",
            "Lockdown Mode is off. It blocks the attachment types and features that "
            "zero-click exploits have used; turn it on if you may be targeted.",
            Severity.LOW, refs=("https://support.apple.com/en-us/105120",)),
    _device("ios-lockdown-mode-on", "Lockdown Mode enabled",
            "Lockdown Mode is on: Apple's protection against mercenary spyware is active "
            "(information, as MVT says it; alone, it leaves the verdict clean).",
            Severity.INFO, refs=("https://support.apple.com/en-us/105120",)),
)


def _settings_rules() -> list[RuleInfo]:
    from spywall.android.common import DANGEROUS_SETTINGS

    return [_device(f"android-setting-{key.replace('_', '-')}", "Protection setting weakened",
                    f"The setting {key} is not {safe}: {why}.", Severity.MEDIUM)
            for key, (safe, why) in DANGEROUS_SETTINGS.items()]


def _indicator_rules() -> list[RuleInfo]:
    from spywall.iocs.model import KINDS

    kinds = [(f"ioc-{k.replace('_', '-')}", k.replace("_", " ")) for k in KINDS]
    kinds += [("ioc-ip", "address in captured traffic"), ("ioc-dns", "DNS name or answer"),
              ("ioc-tls-sni", "TLS server name (SNI)")]
    return [RuleInfo(id=rule, title=f"Known spyware indicator: {what}", kind=IND,
                     severity=None, source="indicators",
                     description=f"A {what} seen in the evidence equals a value published as "
                                 "an indicator of a spyware campaign (the finding names the "
                                 "campaign and the indicator file). Critical, as MVT "
                                 "marks a detected indicator; high where a phone check "
                                 "matches a bare file name or path (its manifest, "
                                 "filesystem, locationd_clients and sms_attachments "
                                 "modules, high in MVT too).")
            for rule, what in dict(kinds).items()]


def _detector_rules() -> list[RuleInfo]:
    from spywall.registry import all_detectors

    return [RuleInfo(id=d.info.id, title=d.info.title, kind=d.info.kind,
                     severity=d.info.severity, description=d.info.description.strip(),
                     cves=d.info.cves, references=d.info.references,
                     source=f"scan detector ({', '.join(d.info.formats)})")
            for d in all_detectors()]


def _capture_rules() -> list[RuleInfo]:
    from spywall.net.pipeline import CAPTURE_RULES
    from spywall.net.voip.rules import RULES

    out = [RuleInfo(id=r.id, title=r.title, kind=r.kind, severity=r.severity,
                    description=r.description, cves=r.cves, references=r.references,
                    source="pcap VoIP analyzer") for r in RULES.values()]
    out += [RuleInfo(id=rule, title=title, kind=kind, severity=sev, references=refs,
                     description=title + ".", source="pcap")
            for rule, (title, kind, sev, refs) in CAPTURE_RULES.items()]
    return out


def _engine_rules() -> list[RuleInfo]:
    return [RuleInfo(
        id="incomplete-examination", title="Input not examined completely", kind=H,
        severity=Severity.MEDIUM, source="scan, pcap and the device checks",
        description="A limit (size, count, nesting depth, decompressed bytes or time) stopped "
                    "the examination of part of an input, a part could not be opened, or "
                    "(device checks) a module could not read an artifact that is there "
                    "(malformed, of an unknown form, encrypted); what was not examined "
                    "may hold an exploit or an indicator, so the input is not reported "
                    "clean.")]


# The platform side's rules (``spywall platform``, ``spywall serve``): the reasons of a
# gate decision, and what ties a violation, a delivery or an attribution to its cause.
_PLATFORM = (
    ("registry-identifier", "Barred identifier", "deny: an identifier of the event (an "
     "address in a barred range, an ASN, a phone or prefix, an account, a device, a client "
     "build or a payload hash) is one the registry lists for a barred party"),
    ("registration-denied", "Account whose registration was denied", "deny: every later "
     "event of an account whose registration the gate denied"),
    ("account-banned", "Banned account", "deny: an analyst applied a ban to the account"),
    ("attachment-exploit", "Attachment with an exploit", "deny: the scan engine found an "
     "exploit structure in an attachment"),
    ("attachment-known-malicious", "Attachment known to be malicious", "deny: an attachment "
     "known only by its hash was found malicious before"),
    ("media-exploit", "Call media with an exploit", "deny: the pcap engine found an exploit "
     "structure in a call's media capture (the 2019 pattern)"),
    ("derived-identifier", "Identifier derived from an attributed campaign", "hold: the "
     "event shares an account, device or client build with a campaign attributed to a "
     "party; banning the account waits for an analyst"),
    ("ban-proposed", "Account proposed for a ban", "hold: analysis linked the account to a "
     "campaign and an analyst has not decided yet"),
    ("attachment-incomplete", "Payload not examined completely", "hold: an attachment or a "
     "capture could not be examined completely (fail closed: never allowed as clean)"),
    ("registry-sha256", "Payload hash barred", "a message whose attachment's hash the "
     "registry bars is a malicious delivery"),
    ("retro-hunt", "Found by a retro-hunt", "a stored object re-examined later with today's "
     "detectors carried an exploit; the deliveries that carried it are malicious"),
    ("shared-identifier", "Campaign attributed by a shared identifier", "an actor account "
     "or the infrastructure of a campaign matches a party's identifiers"),
)


def _platform_rules() -> list[RuleInfo]:
    return [RuleInfo(id=rule, title=title, kind=H, severity=Severity.HIGH,
                     description=text[0].upper() + text[1:] + ".", source="platform gate "
                     "and analysis", references=(HELPLINE,)) for rule, title, text in _PLATFORM]


@cache
def rulebook() -> dict[str, RuleInfo]:
    """Every rule id -> its explanation (imports every detector and rule table)."""
    rules = [*_detector_rules(), *_capture_rules(), *_engine_rules(), *_indicator_rules(),
             *DEVICE_RULES, *_settings_rules(), *_platform_rules()]
    return {r.id: r for r in rules}


def explain(rule: str) -> RuleInfo | None:
    return rulebook().get(rule)


def explanation_text(info: RuleInfo, width: int = 78) -> str:
    """The story of a rule, in plain words (plain text, wrapped at ``width``)."""
    sev = info.severity.value if info.severity else "set by the indicator set"

    def para(label: str, text: str) -> str:
        return textwrap.fill(f"{label}: {' '.join(text.split())}", width,
                             subsequent_indent="  ", break_long_words=False,
                             break_on_hyphens=False)

    lines = [textwrap.fill(f"{info.id}: {info.title}", width, subsequent_indent="  "), "",
             para("What it means", info.description),
             para("How sure", f"{info.kind.value}, {CERTAINTY[info.kind]} (severity {sev})."),
             para("What to do next", NEXT_STEPS[info.kind])]
    if info.cves:
        lines.append(para("Vulnerabilities", ", ".join(info.cves)))
    lines.append("Read more:")
    lines += [f"  {ref}" for ref in info.read_more()]
    lines.append(f"Reported by: {info.source}")
    return "\n".join(lines) + "\n"
