"""A TCP proxy in front of a server, for tests that lose the server mid-run: ``cut()`` (or
``cut_after(marker, n)``: when the n-th request carrying ``marker`` arrives, before it is
forwarded) drops every connection and refuses new ones, as a killed server does;
``restore()`` listens again on the same port."""

from __future__ import annotations

import socket
import threading


class Proxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.upstream = upstream_port
        self.port = 0
        self._listener: socket.socket | None = None
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._marker: bytes | None = None
        self._left = 0
        self.seen = 0

    def start(self) -> Proxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection((self.host, self.upstream))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, inbound: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if inbound and self._marker is not None and self._marker in data:
                    with self._lock:
                        self.seen += data.count(self._marker)
                        trip = self._left > 0 and self.seen >= self._left
                    if trip:
                        self.cut()
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def cut_after(self, marker: bytes, n: int) -> None:
        self._marker, self._left, self.seen = marker, n, 0

    def cut(self) -> None:
        with self._lock:
            self._left = 0
            listener, self._listener = self._listener, None
            conns, self._conns = self._conns, []
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept() (close alone does not)
            except OSError:
                pass
            listener.close()
        for s in conns:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self._marker = None
        self.start()

    def stop(self) -> None:
        self.cut()
