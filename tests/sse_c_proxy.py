"""SSE-C as S3 enforces it, in front of moto (moto 5 ignores the SSE-C headers).

Usage: python sse_c_proxy.py <moto endpoint>; prints the port it listens on, then forwards every
request to moto. Like S3 it remembers which customer key (its MD5) each object was written with
and answers 400 to:
  * a write (PUT, multipart create / part / copy) whose SSE-C headers are malformed;
  * a GET or HEAD of an SSE-C object without the same key (or of a plain object with a key);
  * a copy, or an upload-part-copy, from an SSE-C object without the same
    x-amz-copy-source-server-side-encryption-customer-* headers;
  * an upload part of an SSE-C multipart upload without the upload's key.
HEAD and GET of an SSE-C object answer the x-amz-server-side-encryption-customer-algorithm and
-key-MD5 headers, as S3 does, so boto3 reports SSECustomerAlgorithm.
"""

import base64
import hashlib
import http.client
import re
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM = urllib.parse.urlparse(sys.argv[1])
LOCK = threading.Lock()
OBJECTS = {}  # "bucket/key" -> customer key MD5 (None: written without SSE-C)
UPLOADS = {}  # upload id -> (object, MD5 or None)
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class Refused(Exception):
    pass


def customer_md5(headers, prefix):
    alg = headers.get(prefix + "algorithm")
    key = headers.get(prefix + "key")
    md5 = headers.get(prefix + "key-MD5")
    if alg is None and key is None and md5 is None:
        return None
    if alg != "AES256" or key is None or md5 is None:
        raise Refused(f"incomplete {prefix}* headers")
    raw = base64.b64decode(key)
    if len(raw) != 32:
        raise Refused("the customer key is not 256 bits")
    if base64.b64encode(hashlib.md5(raw).digest()).decode() != md5:
        raise Refused("the customer key MD5 does not match")
    return md5


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urllib.parse.urlparse(self.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        obj = urllib.parse.unquote(url.path.lstrip("/"))
        is_object = "/" in obj
        try:
            record = self.check(obj, is_object, query)
        except Refused as e:
            return self.answer(400, {}, f"<Error><Code>InvalidRequest</Code><Message>{e}</Message></Error>".encode())
        status, headers, data = self.forward(body)
        if status < 300 and record:
            data = record(data) or data
        with LOCK:
            md5 = OBJECTS.get(obj) if is_object else None
        if md5 and self.command in ("GET", "HEAD") and "uploadId" not in query:
            headers["x-amz-server-side-encryption-customer-algorithm"] = "AES256"
            headers["x-amz-server-side-encryption-customer-key-MD5"] = md5
        self.answer(status, headers, data)

    def check(self, obj, is_object, query):
        """Refuses what S3 refuses; returns what to record when the request succeeds."""
        if not is_object:
            return None
        md5 = customer_md5(self.headers, "x-amz-server-side-encryption-customer-")
        source = self.headers.get("x-amz-copy-source")
        if source:
            src = urllib.parse.unquote(source.split("?")[0].lstrip("/"))
            src_md5 = customer_md5(self.headers, "x-amz-copy-source-server-side-encryption-customer-")
            with LOCK:
                stored = OBJECTS.get(src)
            if stored != src_md5:
                raise Refused(f"copy source {src}: wrong or missing copy-source SSE-C key")
        with LOCK:
            stored = OBJECTS.get(obj)
        method = self.command
        if method in ("GET", "HEAD") and "uploadId" not in query:
            if obj in OBJECTS and stored != md5:
                raise Refused(f"{obj}: wrong or missing SSE-C key")
            return None
        if method == "POST" and "uploads" in query:
            return lambda data: self.remember_upload(obj, md5, data)
        if "uploadId" in query:
            upload = query["uploadId"][0]
            with LOCK:
                _, upload_md5 = UPLOADS.get(upload, (obj, None))
            if method == "PUT" and upload_md5 != md5:
                raise Refused(f"{obj}: upload part without the upload's SSE-C key")
            if method == "POST":
                return lambda _: self.set(obj, upload_md5)
            return None
        if method == "PUT":
            return lambda _: self.set(obj, md5)
        if method == "DELETE":
            return lambda _: self.forget(obj)
        return None

    def set(self, obj, md5):
        with LOCK:
            OBJECTS[obj] = md5

    def forget(self, obj):
        with LOCK:
            OBJECTS.pop(obj, None)

    def remember_upload(self, obj, md5, data):
        found = re.search(rb"<UploadId>([^<]+)</UploadId>", data)
        if found:
            with LOCK:
                UPLOADS[found.group(1).decode()] = (obj, md5)

    def forward(self, body):
        conn = http.client.HTTPConnection(UPSTREAM.hostname, UPSTREAM.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        out = {k: v for k, v in resp.getheaders() if k.lower() not in HOP | {"content-length"}}
        if self.command == "HEAD":
            out["Content-Length"] = resp.getheader("Content-Length", "0")
        conn.close()
        return resp.status, out, data

    def answer(self, status, headers, data):
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        if "Content-Length" not in headers:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = do_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
