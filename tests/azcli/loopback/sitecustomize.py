"""Loaded by the `az` process of tests/azcli (PYTHONPATH points here): loopback only.

- `*.localhost` names resolve to 127.0.0.1 (glibc here does not resolve them, as a user's
  /etc/hosts line would: the README's setup), so `https://kv1.vault.localhost:PORT` works.
- Every other name is refused at once (no DNS query leaves the machine, nothing waits on a
  timeout) and so is a connection to any address that is not loopback. Each refusal is
  appended to the file named by STRONGROOM_EGRESS_LOG, so the test can assert on them.

Nothing else in `az` is changed.
"""

import ipaddress
import os
import socket

_LOG = os.environ.get("STRONGROOM_EGRESS_LOG")
_getaddrinfo = socket.getaddrinfo
_connect = socket.socket.connect
_connect_ex = socket.socket.connect_ex


def _refuse(what: str) -> None:
    if _LOG:
        with open(_LOG, "a", encoding="utf-8") as f:
            f.write(what + "\n")


def _is_loopback(host) -> bool:
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name is None or name == "localhost" or _is_loopback(name):
        return _getaddrinfo(host, *args, **kwargs)
    if isinstance(name, str) and name.lower().rstrip(".").endswith(".localhost"):
        return _getaddrinfo("127.0.0.1", *args, **kwargs)
    _refuse(f"resolve {name}")
    raise socket.gaierror(socket.EAI_NONAME, f"{name}: refused by the test's loopback-only guard")


def _check(sock, address) -> None:
    if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        _refuse(f"connect {address[0]}:{address[1]}")
        raise ConnectionRefusedError(f"{address[0]}: refused by the test's loopback-only guard")


def connect(self, address):
    _check(self, address)
    return _connect(self, address)


def connect_ex(self, address):
    _check(self, address)
    return _connect_ex(self, address)


socket.getaddrinfo = getaddrinfo
socket.socket.connect = connect
socket.socket.connect_ex = connect_ex
