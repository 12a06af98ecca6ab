"""The collector's listening socket, bound before anything is announced.

uvicorn binds only after the app has started, so a port in use was reported after the banner
and "Application startup complete", as a log line and exit 3. Binding first (and handing the
socket to uvicorn) turns every bind failure into one sentence and leaves no window in which
another process could take the port between a check and the bind.
"""

from __future__ import annotations

import errno
import socket

from alphatrace.errors import InputError


def bind(host: str, port: int, *, option: str = "--port") -> socket.socket:
    """A bound TCP socket on (host, port) (not yet listening), or InputError saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    # As uvicorn does: a restart may reuse a port whose old connections are in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except socket.gaierror:
        sock.close()
        raise InputError(f"--host {host}: unknown host name") from None
    except OverflowError:
        sock.close()
        raise InputError(f"{option} {port}: not a TCP port (0-65535)") from None
    except OSError as e:
        sock.close()
        raise InputError(bind_error(host, port, e, option)) from None
    sock.set_inheritable(True)
    return sock


def bind_error(host: str, port: int, e: OSError, option: str = "--port") -> str:
    """One sentence for a failed bind."""
    where = f"{host}:{port}"
    if e.errno == errno.EADDRINUSE:
        return (f"{where} is already in use (another collector running?): stop that process or "
                f"choose another {option}")
    if e.errno == errno.EACCES:
        return (f"{where}: permission denied (ports below 1024 need privileges): choose another "
                f"{option}")
    if e.errno == errno.EADDRNOTAVAIL:
        return f"--host {host}: not an address of this machine"
    return f"cannot listen on {where}: {e.strerror or e}"
