"""`appliance actions …`: the audit log."""

from __future__ import annotations

import argparse
import datetime as dt
import json

from appliance.actions.audit import AuditLog
from appliance.config import config_from_args, data_dir


def add_actions_commands(actions: argparse.ArgumentParser) -> None:
    sub = actions.add_subparsers(dest="actions_command", metavar="ACTION", required=True)
    p = sub.add_parser("log", help="every action taken: who asked, what was said, the result")
    p.add_argument("--limit", type=int, default=50, help="the newest N entries (default 50)")
    p.add_argument("--all", action="store_true", help="every entry kept")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(handler=cmd_log)


def cmd_log(args: argparse.Namespace) -> int:
    config = config_from_args(args).actions
    path = data_dir() / "audit.sqlite3"
    if not path.exists():
        args.say(f"No actions yet ({path} does not exist).")
        return 0
    log = AuditLog(path, retention_days=config.audit_retention_days,
                   max_rows=config.audit_max_rows)  # fmt: skip
    try:
        entries = log.entries(None if args.all else max(1, args.limit))
    finally:
        log.close()
    if not entries:
        args.say("No actions yet.")
    for entry in entries:
        if args.json:
            args.say(json.dumps(entry.__dict__, ensure_ascii=False))
            continue
        when = dt.datetime.fromtimestamp(entry.time).strftime("%Y-%m-%d %H:%M:%S")
        arguments = ", ".join(f"{k}={v!r}" for k, v in entry.arguments.items())
        status = "ok  " if entry.ok else "FAIL"
        heard = f' "{entry.transcript}"' if entry.transcript else ""
        args.say(f"{when} {status} {entry.origin}/{entry.path}{heard}")
        args.say(f"    {entry.tool}({arguments}) → {entry.result}")
    return 0
