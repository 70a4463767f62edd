"""Running as a device service: systemd notifications, the /data partition, first boot."""
