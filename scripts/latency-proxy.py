#!/usr/bin/env python3
"""A forwarding HTTP proxy that puts a server DELAY ms further away: every request waits DELAY ms,
then goes to UPSTREAM as it came (method, path, headers, body), and the answer comes back as it
came. In front of moto it makes an S3 store that answers like one in another region, where moto
on the loopback answers in about a millisecond and hides every round trip made in turn
(shared/notes/profile-ingest.md, "Store latency").

Python standard library only. One thread per client connection (clients keep connections open
and send several requests at once on several connections); HTTP/1.1 keep-alive towards the
client whatever the upstream does (moto closes every connection, a real S3 endpoint keeps them,
so the client sees what it would see there); one upstream connection per client connection,
reopened when closed; request and response bodies streamed in 64 KiB pieces (Content-Length or
chunked) rather than read whole.

    latency-proxy.py --upstream http://127.0.0.1:5000 [--delay-ms 60] [--listen 127.0.0.1:0]

Prints `listening on http://HOST:PORT` on stdout once it accepts connections (port 0 picks a
free port), and runs until killed. Point the client's endpoint (store.endpoint) at that address.
"""
import argparse
import http.client
import http.server
import sys
import time
import urllib.parse

PIECE = 64 * 1024
# Headers that describe one connection, not the message (RFC 9110 7.6.1); each hop sets its own.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer",
              "transfer-encoding", "upgrade"}


def chunked_pieces(rfile):
    """The data of a chunked body read from `rfile`, piece by piece (trailers dropped)."""
    while True:
        size = int(rfile.readline().split(b";")[0].strip(), 16)
        if size == 0:
            while rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            return
        left = size
        while left:
            data = rfile.read(min(left, PIECE))
            if not data:
                raise ConnectionError("client closed the connection inside a chunk")
            left -= len(data)
            yield data
        rfile.readline()


def sized_pieces(rfile, length):
    left = length
    while left:
        data = rfile.read(min(left, PIECE))
        if not data:
            raise ConnectionError("client closed the connection inside the body")
        left -= len(data)
        yield data


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    upstream = None  # (host, port), set by main
    delay = 0.0

    def log_message(self, *args):
        pass

    def upstream_connection(self):
        if getattr(self, "_upstream", None) is None:
            self._upstream = http.client.HTTPConnection(*self.upstream, timeout=300)
        return self._upstream

    def forward(self):
        time.sleep(self.delay)
        chunked = "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        length = int(self.headers.get("Content-Length") or 0)
        try:
            resp = self.send_upstream(chunked, length)
        except (OSError, http.client.HTTPException) as e:
            if getattr(self, "_upstream", None) is not None:
                self._upstream.close()
                self._upstream = None
            self.send_error(502, f"upstream {self.upstream[0]}:{self.upstream[1]}: {e}")
            return
        self.send_back(resp)

    def send_upstream(self, chunked, length):
        conn = self.upstream_connection()
        conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
        for k, v in self.headers.items():
            if k.lower() not in HOP_BY_HOP:
                conn.putheader(k, v)
        if chunked:
            conn.putheader("Transfer-Encoding", "chunked")
        conn.endheaders()
        if chunked:
            for data in chunked_pieces(self.rfile):
                conn.send(b"%x\r\n%s\r\n" % (len(data), data))
            conn.send(b"0\r\n\r\n")
        elif length:
            for data in sized_pieces(self.rfile, length):
                conn.send(data)
        return conn.getresponse()

    def send_back(self, resp):
        self.send_response_only(resp.status, resp.reason)
        has_length = resp.getheader("Content-Length") is not None
        for k, v in resp.getheaders():
            if k.lower() not in HOP_BY_HOP:
                self.send_header(k, v)
        bodiless = self.command == "HEAD" or resp.status in (204, 304) or resp.status < 200
        rechunk = not bodiless and not has_length
        if rechunk:
            self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        while not bodiless:
            data = resp.read(PIECE)
            if not data:
                break
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if rechunk else data)
        if rechunk:
            self.wfile.write(b"0\r\n\r\n")
        resp.close()
        self.wfile.flush()

    def finish(self):
        super().finish()
        if getattr(self, "_upstream", None) is not None:
            self._upstream.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = forward


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--upstream", required=True, help="http://host:port to forward to")
    ap.add_argument("--delay-ms", type=float, default=60.0, help="added to every request")
    ap.add_argument("--listen", default="127.0.0.1:0", help="host:port (port 0: a free one)")
    args = ap.parse_args()
    up = urllib.parse.urlsplit(args.upstream)
    if up.scheme != "http" or not up.hostname:
        sys.exit(f"--upstream {args.upstream!r}: only http://host:port is forwarded")
    Proxy.upstream = (up.hostname, up.port or 80)
    Proxy.delay = args.delay_ms / 1000.0
    host, _, port = args.listen.rpartition(":")
    server = http.server.ThreadingHTTPServer((host or "127.0.0.1", int(port)), Proxy)
    server.daemon_threads = True
    print(f"listening on http://{server.server_address[0]}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
