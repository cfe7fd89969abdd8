"""Packet captures: pcap/pcapng reading, link and IP decoding, reassembly, DNS/TLS, the pipeline."""
