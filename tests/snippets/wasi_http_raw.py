"""A wasi:http/incoming-handler@0.2.0 handler in Python against componentize-py's generated bindings, no helper.

GET /any/path -> 200 "python: GET /any/path (N body bytes)"; /missing -> 404; an x-echo request header is echoed.
"""

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import types


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: types.IncomingRequest, response_out: types.ResponseOutparam) -> None:
        method = request.method()
        name = method.value if isinstance(method, types.Method_Other) else type(method).__name__[7:].upper()
        path = request.path_with_query() or ""
        echo = request.headers().get("x-echo")
        size = 0
        body = request.consume()
        with body.stream() as stream:
            while True:
                try:
                    size += len(stream.blocking_read(65536))
                except Err:  # closed: the whole body is read
                    break
        text = f"python: {name} {path} ({size} body bytes)\n".encode()
        headers = [("content-type", b"text/plain"), ("x-handler", b"python")]
        headers += [("x-echo", value) for value in echo[:1]]
        response = types.OutgoingResponse(types.Fields.from_list(headers))
        response.set_status_code(404 if path.startswith("/missing") else 200)
        out = response.body()
        with out.write() as stream:
            stream.blocking_write_and_flush(text)
        types.ResponseOutparam.set(response_out, Ok(response))
        types.OutgoingBody.finish(out, None)
