"""The platform side: bar a vendor and its affiliates, gate events before delivery, find
the vendor's accounts and every user it attacked, notify them, and keep the record.

The flow (see ``../shared/reference/platform.md`` for the contract):
events -> ``intake`` (validate, dedupe, store) -> ``gate`` (verdict) -> ``analysis``
(deliveries, links, campaigns, attribution, violations) -> ``enforce`` / ``notify`` ->
faces (``spywall platform``, ``spywall serve``).
"""
