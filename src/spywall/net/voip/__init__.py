"""VoIP analysis for ``spywall pcap``: SIP/SDP call tracking, RTP, RTCP (and XR), SRTCP,
STUN and TURN ChannelData demultiplexed on one port (RFC 7983), the structural checks that
follow from each format, and the zero-click behavioural detectors.

Entry point: ``spywall.net.voip.analyzer.VoipAnalyzer``; the rule table is ``rules.RULES``.
"""
