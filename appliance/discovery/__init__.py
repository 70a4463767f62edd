"""Being found on the local network: mDNS/DNS-SD advertisement (python-zeroconf)."""
