"""The evidence log: an append-only transparency log of what the platform saw and did.

Every registry change, gate denial, violation, malicious delivery, campaign attribution,
enforcement step and notification status change is appended as one entry: a JSON object
in its RFC 8785 canonical form, so that the same entry always has the same bytes. The
entries are the leaves of an RFC 9162 Merkle tree; signed checkpoints (C2SP
tlog-checkpoint, Ed25519 signed notes) commit to the tree, witnesses cosign them, and a
bundle exported for a court carries the entries with their inclusion proofs, the
checkpoint, consistency proofs back to earlier checkpoints and the public keys.

Modules:
- ``canonical``: canonical JSON and the RFC 9162 leaf and node hashes (the only code the
  verifier shares with the writer);
- ``merkle``: the writer's tree arithmetic (new nodes, roots, proof generation);
- ``keys``: Ed25519 signing keys, verifier keys, signed notes and cosignatures;
- ``tables`` / ``log``: the log in the platform database (append, checkpoint, proofs);
- ``bundle`` / ``render``: the exported bundle and its human-readable report;
- ``verify``: the independent verifier of bundles and single entries;
- ``witness``: a witness that cosigns only checkpoints consistent with what it saw;
- ``audit``: the stored log checked against itself;
- ``reports``: scan/pcap/check reports appended to a log.

See ``docs/evidence.md``.
"""
