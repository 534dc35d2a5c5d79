"""The everyday commands an operator types first on a node, answered from its simulated state.

``ls``, ``uname -a``, ``df -h``, ``free -m``, ``ps``, ``ip addr``, ``journalctl -u UNIT -n N``:
what they print follows the node: its phase (a cloud image, the installer in RAM, the installed
Tribes OS), which services run (``systemctl stop tribes`` takes tribes out of ``ps``), its
loopback address and its journal. They are plain text in the shapes the real tools print, so a
reader's habits and a runbook's ``grep`` work; the figures that do not follow state are fixed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from legion_nb.emulators.nodes.system import NodeSystem

__all__ = ["EVERYDAY_COMMANDS", "everyday"]

Answer = tuple[int, str, str]
"""Exit status, stdout, stderr."""

_KERNEL = {"cloud-image": "6.1.0-18-cloud-amd64", "installer": "6.1.0-18-amd64", "installed": "6.1.0-tribes1"}
_SERVICES = (
    ("tribes", "/usr/bin/tribes --config /etc/tribes/tribes.json"),
    ("tangd", "/usr/libexec/tangd /var/db/tang"),
    ("node-exporter", "/usr/bin/prometheus-node-exporter"),
)


def _ls(system: NodeSystem, address: str, args: list[str]) -> Answer:
    paths = [a for a in args if not a.startswith("-")] or ["."]
    out: list[str] = []
    for path in paths:
        if path in (".", "~", "/root"):
            names = ["authorized_keys"] if system.authorized else []
        elif path == "/":
            names = [
                "bin",
                "boot",
                "dev",
                "etc",
                "home",
                "lib",
                "proc",
                "root",
                "run",
                "srv",
                "sys",
                "tmp",
                "usr",
                "var",
            ]
        elif path in ("/etc", "/etc/"):
            names = sorted(
                {"hostname", "os-release", "ssh"}
                | {f.split("/")[2] for f in system.files if f.startswith("/etc/") and f.count("/") >= 2}
            )
        else:
            under = sorted(f for f in system.files if f == path or f.startswith(path.rstrip("/") + "/"))
            if not under:
                return 2, "".join(out), f"ls: cannot access '{path}': No such file or directory\n"
            names = [f.removeprefix(path.rstrip("/") + "/") or f for f in under]
        out.append("\n".join(names) + ("\n" if names else ""))
    return 0, "".join(out), ""


def _uname(system: NodeSystem, address: str, args: list[str]) -> Answer:
    kernel = _KERNEL.get(system.phase, _KERNEL["installed"])
    if args in ([], ["-s"]):
        return 0, "Linux\n", ""
    if args == ["-r"]:
        return 0, kernel + "\n", ""
    if args in (["-n"],):
        return 0, system.hostname + "\n", ""
    return 0, f"Linux {system.hostname} {kernel} #1 SMP PREEMPT_DYNAMIC x86_64 GNU/Linux\n", ""


def _df(system: NodeSystem, address: str, args: list[str]) -> Answer:
    head = "Filesystem      Size  Used Avail Use% Mounted on\n"
    if system.phase == "installer":  # the installer runs from RAM: no disk mounted yet
        return 0, head + "tmpfs           3.8G  612M  3.2G  16% /\n", ""
    root = "/dev/mapper/root" if system.phase == "installed" else "/dev/sda1      "
    used = "2.9G" if system.phase == "installed" else "1.6G"
    return (
        0,
        head + f"{root:<15} 38G  {used}   34G   8% /\ntmpfs           1.9G     0  1.9G   0% /dev/shm\n",
        "",
    )


def _free(system: NodeSystem, address: str, args: list[str]) -> Answer:
    used = 412 + (1200 if system.service_state("tribes") == "active" else 0)
    total = 3814
    return (
        0,
        (
            "               total        used        free      shared  buff/cache   available\n"
            f"Mem:           {total:>5}       {used:>5}       {total - used - 600:>5}"
            f"           4         600       {total - used:>5}\n"
            "Swap:              0           0           0\n"
        ),
        "",
    )


def _ps(system: NodeSystem, address: str, args: list[str]) -> Answer:
    rows = [(1, "/sbin/init"), (412, "sshd: /usr/sbin/sshd -D")]
    if system.admin_api_active:
        rows.append((640, "/usr/bin/legion-admin-api --tls"))
    for pid, (service, command) in enumerate(_SERVICES, start=700):
        running = system.phase == "installed" and system.service_state(service) == "active"
        if running and (service != "tribes" or system.tribes_config is not None):
            rows.append((pid, command))
    rows.append((900, "ps " + " ".join(args)))
    return (
        0,
        "    PID TTY          TIME CMD\n"
        + "".join(f"{pid:>7} ?        00:00:00 {cmd}\n" for pid, cmd in rows),
        "",
    )


def _ip(system: NodeSystem, address: str, args: list[str]) -> Answer:
    if args[:1] not in (["addr"], ["a"], ["address"]):
        return 1, "", f"ip: unsupported here: {' '.join(args)} (try ip addr)\n"
    return (
        0,
        (
            "1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN\n"
            "    inet 127.0.0.1/8 scope host lo\n"
            "2: eth0: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc fq_codel state UP\n"
            f"    inet {address}/32 scope global eth0\n"
        ),
        "",
    )


def _journalctl(system: NodeSystem, address: str, args: list[str]) -> Answer:
    unit, lines, words = None, 10, list(args)
    while words:
        flag = words.pop(0)
        if flag in ("-u", "--unit") and words:
            unit = words.pop(0).removesuffix(".service")
        elif flag in ("-n", "--lines"):
            if words and words[0].isdigit():
                lines = int(words.pop(0))
        elif flag.startswith("-n") and flag[2:].isdigit():
            lines = int(flag[2:])
        elif flag == "--no-pager":
            continue
        else:
            return 1, "", f"journalctl: unsupported here: {flag}\n"
    unit_name = {"node-exporter": "prometheus-node-exporter"}.get(unit or "", unit)
    entries = [e for e in system.journal if unit is None or e.unit in (unit, unit_name)]
    if not entries:
        return 0, "-- No entries --\n", ""

    def stamp(moment: float) -> str:
        return time.strftime("%b %d %H:%M:%S", time.localtime(moment))

    text = "".join(f"{stamp(e.time)} {system.hostname} {e.unit}: {e.message}\n" for e in entries[-lines:])
    return 0, text, ""


EVERYDAY_COMMANDS: dict[str, Callable[[NodeSystem, str, list[str]], Answer]] = {
    "ls": _ls,
    "uname": _uname,
    "df": _df,
    "free": _free,
    "ps": _ps,
    "ip": _ip,
    "journalctl": _journalctl,
}


def everyday(system: NodeSystem, address: str, name: str, args: list[str]) -> Answer | None:
    """The answer to ``name args`` when it is an everyday command, else None."""
    command = EVERYDAY_COMMANDS.get(name)
    return None if command is None else command(system, address, args)
