"""``check-ios``: an iTunes / Finder backup checked against spyware indicators, rules and
heuristics, with message attachments scanned for exploit payloads."""
