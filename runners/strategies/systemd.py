"""systemd: a git checkout on every host, the service restarted with `systemctl`."""

from __future__ import annotations

from runners.strategies.base import FETCH, VERSION, GitCheckout

SYSTEMD = GitCheckout(
    name="systemd",
    defaults={
        "fetch": FETCH,
        "install": "pip install -r requirements.txt",
        "restart": "sudo systemctl restart {service}",
        "stop": "sudo systemctl stop {service}",
        "start": "sudo systemctl start {service}",
        "status": "systemctl is-active {service} && systemctl status --no-pager {service}",
        "logs": "journalctl -u {service} --no-pager -n 200 --since {since}",
        "version": VERSION,
    },
    dependency_file="requirements.txt",
    local_since=True,  # journalctl --since reads the host's local time
)
