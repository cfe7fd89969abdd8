"""Fuzz check-ios: the MBFile decoder, the journal-header and WebKit-name readers of the
dump modules, and every module on a hostile artifact.

The first byte picks an artifact of a generated backup (a database, a plist, an
attachment or a Manifest.db MBFile blob); the rest of the input replaces it; the whole
check runs. Modules may fail (their ModuleRun says so) but nothing may escape except
``SpywallError`` (InputError when Manifest.db itself is the target).
"""

import contextlib
import sqlite3
import sys
import tempfile
from pathlib import Path

import atheris

with atheris.instrument_imports():
    from spywall.errors import SpywallError
    from spywall.iocs import Indicator, IocIndex
    from spywall.ios.check import check_backup
    from spywall.ios.mbfile import decode
    from spywall.ios.versions import parse_header
    from spywall.ios.webkit_folders import origin_url
    from spywall.limits import Limits
    from spywall.samples.ios import BackupSpec, file_id, write_backup

TMP = tempfile.TemporaryDirectory(prefix="fuzz-ios-")
ROOT = write_backup(Path(TMP.name, "b"), BackupSpec(messages=6, history=6, extra_processes=2))
TARGETS = [
    ("HomeDomain", "Library/SMS/sms.db"),
    ("WirelessDomain", "Library/Databases/DataUsage.sqlite"),
    ("AppDomain-com.apple.mobilesafari", "Library/Safari/History.db"),
    ("AppDomain-com.apple.mobilesafari", "Library/Safari/BrowserState.db"),
    ("HomeDomain", "Library/TCC/TCC.db"),
    ("HomeDomain", "Library/Preferences/com.apple.osanalytics.addaily.plist"),
    ("HomeDomain", "Library/Preferences/com.apple.identityservices.idstatuscache.plist"),
    ("RootDomain", "Library/Caches/locationd/clients.plist"),
    ("MediaDomain", "Library/SMS/Attachments/a1/01/ATT-1/IMG_0001.jpg"),
    ("AppDomainGroup-group.net.whatsapp.WhatsApp.shared", "ChatStorage.sqlite"),
    ("AppDomain-com.apple.mobilesafari",
     "Library/WebKit/WebsiteData/ResourceLoadStatistics/full_browsing_session_resourceLog.plist"),
    ("AppDomain-com.apple.mobilesafari",
     "Library/WebKit/WebsiteData/ResourceLoadStatistics/observations.db"),
    ("HomeDomain", "Library/Calendar/Calendar.sqlitedb"),
    ("SysSharedContainerDomain-systemgroup.com.apple.configurationprofiles",
     "Library/ConfigurationProfiles/profile-7a1b.stub"),
    ("HomeDomain", "Library/CallHistoryDB/CallHistory.storedata"),
    ("HomeDomain", "Library/AddressBook/AddressBook.sqlitedb"),
    ("HomeDomain", "Library/CoreDuet/People/interactionC.db"),
    ("AppDomainGroup-group.org.mozilla.ios.Firefox", "profile.profile/browser.db"),
    ("AppDomainGroup-group.net.whatsapp.WhatsApp.shared", "ContactsV2.sqlite"),
]
ORIGINAL = {t: (ROOT / file_id(*t)[:2] / file_id(*t)).read_bytes() for t in TARGETS}
INDEX = IocIndex()
INDEX.add([Indicator("domain", "example.org", "domain-name:value", "Fuzz", "fuzz")])
LIMITS = Limits(max_total_decompressed=8 << 20, max_stream_bytes=4 << 20, seconds=5)


def _manifest_blob(data: bytes) -> None:
    conn = sqlite3.connect(ROOT / "Manifest.db")
    conn.execute("UPDATE Files SET file = ? WHERE relativePath = 'Library/SMS/sms.db'", (data,))
    conn.commit()
    conn.close()


def TestOneInput(data: bytes) -> None:
    with contextlib.suppress(SpywallError):
        decode(data)
    with contextlib.suppress(ValueError):  # an analyticsd journal's header
        parse_header(data)
    origin_url(data.decode("utf-8", "replace"))  # a WebKit storage name
    if not data:
        return
    pick, body = data[0] % (len(TARGETS) + 1), data[1:]
    if pick == len(TARGETS):
        _manifest_blob(body)
        target = None
    else:
        target = TARGETS[pick]
        (ROOT / file_id(*target)[:2] / file_id(*target)).write_bytes(body)
    try:
        check_backup(ROOT, INDEX, limits=LIMITS)
    except SpywallError:
        pass
    finally:
        if target is None:
            _manifest_blob(b"")
        else:
            (ROOT / file_id(*target)[:2] / file_id(*target)).write_bytes(ORIGINAL[target])


if __name__ == "__main__":
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()
