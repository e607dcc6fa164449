"""A minimal OTLP receiver for codexd's tests: gRPC and HTTP/protobuf on 127.0.0.1.

Usage: otlp_sink.py OUT.jsonl [--tls-cert CERT --tls-key KEY [--client-ca CA]]

Binds both transports on free loopback ports, then prints one line on stdout:
    {"grpc": <port>, "http": <port>}
and appends one JSON line per export request to OUT.jsonl:
    {"transport": "grpc" | "http", "signal": "traces" | "metrics" | "logs",
     "encoding": "gzip" | "identity" | null, "request": <the request as JSON, ids in hex>}
gRPC hides the message encoding from the application (null above), so the gRPC port is a
small TCP relay in front of the real server that reads the cleartext HTTP/2 frames and
appends, for the first DATA frame of every request stream, the gRPC compressed-flag byte:
    {"transport": "grpc", "wire": {"stream": <id>, "compressed": true | false}}
It answers every export with success. SIGTERM or SIGINT stops it.

With --tls-cert and --tls-key both transports serve TLS only (the certificate chain and key
are PEM files); with --client-ca as well they require a client certificate signed by that CA
(mTLS). Over TLS the gRPC port is the server itself (no relay, so no "wire" lines), and every
HTTP connection whose TLS handshake fails appends
    {"transport": "http", "tls_error": "<the ssl module's reason>"}
Needs grpcio and opentelemetry-proto (scripts/install-peers puts them in a venv).
"""

import argparse
import base64
import gzip
import json
import signal
import socket
import ssl
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import grpc
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2 as logs_pb2
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2_grpc as logs_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2 as metrics_pb2
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2_grpc as metrics_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2 as trace_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc as trace_grpc

ID_KEYS = ("traceId", "spanId", "parentSpanId")

# signal -> (request type, response type, HTTP path)
SIGNALS = {
    "traces": (trace_pb2.ExportTraceServiceRequest, trace_pb2.ExportTraceServiceResponse, "/v1/traces"),
    "metrics": (metrics_pb2.ExportMetricsServiceRequest, metrics_pb2.ExportMetricsServiceResponse, "/v1/metrics"),
    "logs": (logs_pb2.ExportLogsServiceRequest, logs_pb2.ExportLogsServiceResponse, "/v1/logs"),
}


class Recorder:
    """Appends one JSON line per request; the file is reopened per write so readers see it."""

    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()

    def record(self, transport, signal_name, encoding, request):
        self.write({
            "transport": transport,
            "signal": signal_name,
            "encoding": encoding,
            "request": hexify(MessageToDict(request)),
        })

    def write(self, line):
        with self.lock, open(self.path, "a", encoding="utf-8") as out:
            out.write(json.dumps(line) + "\n")


def hexify(value):
    """OTLP/JSON carries ids as base64; tests compare them as lower-case hex."""
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex() if k in ID_KEYS and isinstance(v, str) else hexify(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [hexify(v) for v in value]
    return value


def grpc_encoding(context):
    """gRPC core decompresses before the handler and does not pass grpc-encoding on."""
    return dict(context.invocation_metadata()).get("grpc-encoding")


def grpc_server(recorder, tls):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))

    def servicer(base, signal_name):
        response_type = SIGNALS[signal_name][1]

        class Servicer(base):
            def Export(self, request, context):  # noqa: N802 (gRPC method name)
                recorder.record("grpc", signal_name, grpc_encoding(context), request)
                return response_type()

        return Servicer()

    trace_grpc.add_TraceServiceServicer_to_server(servicer(trace_grpc.TraceServiceServicer, "traces"), server)
    metrics_grpc.add_MetricsServiceServicer_to_server(
        servicer(metrics_grpc.MetricsServiceServicer, "metrics"), server
    )
    logs_grpc.add_LogsServiceServicer_to_server(servicer(logs_grpc.LogsServiceServicer, "logs"), server)
    if tls is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        credentials = grpc.ssl_server_credentials(
            [(read(tls.tls_key), read(tls.tls_cert))],
            root_certificates=read(tls.client_ca) if tls.client_ca else None,
            require_client_auth=tls.client_ca is not None,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    return server, port


def read(path):
    with open(path, "rb") as file:
        return file.read()


def server_context(tls):
    """The HTTP side's TLS: the certificate, and client certificates required with a CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tls.tls_cert, tls.tls_key)
    if tls.client_ca:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(tls.client_ca)
    return context


class TlsHTTPServer(ThreadingHTTPServer):
    """Handshakes each connection on its own thread, recording the ones that fail."""

    def __init__(self, address, handler, context, recorder):
        super().__init__(address, handler)
        self.context = context
        self.recorder = recorder

    def finish_request(self, request, client_address):
        try:
            conn = self.context.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as error:
            self.recorder.write({"transport": "http", "tls_error": str(error)})
            return
        try:
            self.RequestHandlerClass(conn, client_address, self)
        finally:
            conn.close()


def http_server(recorder, tls):
    by_path = {path: (name, request_type, response_type) for name, (request_type, response_type, path) in SIGNALS.items()}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server API)
            target = by_path.get(self.path)
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            if target is None:
                self.send_error(404)
                return
            name, request_type, response_type = target
            encoding = self.headers.get("Content-Encoding", "identity").lower()
            if encoding == "gzip":
                body = gzip.decompress(body)
            request = request_type()
            request.ParseFromString(body)
            recorder.record("http", name, encoding, request)
            reply = response_type().SerializeToString()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    if tls is None:
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    else:
        server = TlsHTTPServer(("127.0.0.1", 0), Handler, server_context(tls), recorder)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_PADDED = 0x0, 0x8


def relay(recorder, target_port):
    """Listens on a free loopback port and relays every connection to target_port."""
    listener = socket.create_server(("127.0.0.1", 0))

    def pump(src, dst, on_bytes):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
                on_bytes(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def serve(client):
        upstream = socket.create_connection(("127.0.0.1", target_port))
        frames = FrameReader(recorder)
        threading.Thread(target=pump, args=(client, upstream, frames.feed), daemon=True).start()
        pump(upstream, client, lambda _: None)

    def accept_forever():
        while True:
            client, _ = listener.accept()
            threading.Thread(target=serve, args=(client,), daemon=True).start()

    threading.Thread(target=accept_forever, daemon=True).start()
    return listener.getsockname()[1]


class FrameReader:
    """Parses the client side of a cleartext HTTP/2 connection (prior knowledge)."""

    def __init__(self, recorder):
        self.recorder = recorder
        self.buffer = b""
        self.preface_seen = False
        self.streams_seen = set()

    def feed(self, data):
        self.buffer += data
        if not self.preface_seen:
            if len(self.buffer) < len(H2_PREFACE):
                return
            self.buffer = self.buffer[len(H2_PREFACE):]
            self.preface_seen = True
        while len(self.buffer) >= 9:
            length = int.from_bytes(self.buffer[:3], "big")
            if len(self.buffer) < 9 + length:
                return
            kind, flags = self.buffer[3], self.buffer[4]
            stream = int.from_bytes(self.buffer[5:9], "big") & 0x7FFFFFFF
            payload = self.buffer[9 : 9 + length]
            self.buffer = self.buffer[9 + length :]
            if kind == H2_DATA and stream not in self.streams_seen:
                if flags & H2_PADDED:
                    payload = payload[1:]
                if payload:
                    self.streams_seen.add(stream)
                    wire = {"stream": stream, "compressed": payload[0] == 1}
                    self.recorder.write({"transport": "grpc", "wire": wire})


def main():
    parser = argparse.ArgumentParser(description="A minimal OTLP receiver for codexd's tests")
    parser.add_argument("out", help="the JSON-lines file every request is appended to")
    parser.add_argument("--tls-cert", help="serve TLS with this PEM certificate chain")
    parser.add_argument("--tls-key", help="and this PEM key")
    parser.add_argument("--client-ca", help="require client certificates signed by this CA")
    args = parser.parse_args()
    if bool(args.tls_cert) != bool(args.tls_key) or (args.client_ca and not args.tls_cert):
        parser.error("--tls-cert and --tls-key go together; --client-ca needs them")
    tls = args if args.tls_cert else None
    recorder = Recorder(args.out)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    grpc_srv, grpc_port = grpc_server(recorder, tls)
    # The relay reads cleartext HTTP/2 frames: over TLS the server is reached directly.
    public_grpc_port = relay(recorder, grpc_port) if tls is None else grpc_port
    http_srv, http_port = http_server(recorder, tls)
    print(json.dumps({"grpc": public_grpc_port, "http": http_port}), flush=True)
    stop.wait()
    http_srv.shutdown()
    grpc_srv.stop(grace=None)


if __name__ == "__main__":
    main()
