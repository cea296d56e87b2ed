
// ---- wasmlab edge handler helper for AssemblyScript (appended by wasmlab.edge after your code: its line
// numbers stay as you wrote them). You write:
//
//   function onRequest(req: EdgeRequest, res: EdgeResponse): void {
//     res.setHeader("content-type", "text/plain");
//     res.writeString("hello " + req.query("name"));
//   }
//
// ABI (wasmlab-edge/1): exports `memory`, `alloc(len) -> ptr` (a buffer for the request; each call starts a
// new request and frees the previous one) and `handle(ptr, len) -> i64` = (response_ptr << 32) | response_len.

class EdgeRequest {
  method: string = "";
  target: string = "";
  path: string = "";
  queryString: string = "";
  headerNames: string[] = [];
  headerValues: string[] = [];
  body: Uint8Array = new Uint8Array(0);

  /** The value of header `name` (case-insensitive), or "". */
  header(name: string): string {
    const want = name.toLowerCase();
    for (let i = 0; i < this.headerNames.length; i++) {
      if (this.headerNames[i].toLowerCase() == want) return this.headerValues[i];
    }
    return "";
  }

  /** The raw (not percent-decoded) value of query parameter `name`, or "". */
  query(name: string): string {
    if (this.queryString.length == 0) return "";
    const pairs = this.queryString.split("&");
    for (let i = 0; i < pairs.length; i++) {
      const eq = pairs[i].indexOf("=");
      const key = eq < 0 ? pairs[i] : pairs[i].substring(0, eq);
      if (key == name) return eq < 0 ? "" : pairs[i].substring(eq + 1);
    }
    return "";
  }

  /** The body as UTF-8 text. */
  text(): string {
    return String.UTF8.decode(this.body.buffer);
  }
}

class EdgeResponse {
  status: i32 = 200;
  head: string = "";
  chunks: ArrayBuffer[] = [];

  setStatus(status: i32): void {
    this.status = status;
  }
  setHeader(name: string, value: string): void {
    this.head += name + ": " + value + "\n";
  }
  write(data: Uint8Array): void {
    this.chunks.push(data.slice(0).buffer);
  }
  writeString(text: string): void {
    this.chunks.push(String.UTF8.encode(text));
  }
}

let __edgeInput: ArrayBuffer = new ArrayBuffer(1);
let __edgeOutput: ArrayBuffer = new ArrayBuffer(1);

export function alloc(len: i32): usize {
  __edgeOutput = new ArrayBuffer(1);
  __edgeInput = new ArrayBuffer(len > 0 ? len : 1);
  return changetype<usize>(__edgeInput);
}

function __edgeParse(data: Uint8Array): EdgeRequest {
  const req = new EdgeRequest();
  let headEnd = data.length;
  for (let i = 0; i + 1 < data.length; i++) {
    if (data[i] == 10 && data[i + 1] == 10) {
      headEnd = i + 1;
      break;
    }
  }
  const head = String.UTF8.decode(data.slice(0, headEnd).buffer);
  req.body = headEnd < data.length ? data.slice(headEnd + 1) : new Uint8Array(0);
  const lines = head.split("\n");
  const first = lines[0];
  const space = first.indexOf(" ");
  req.method = space < 0 ? first : first.substring(0, space);
  req.target = space < 0 ? "" : first.substring(space + 1);
  const q = req.target.indexOf("?");
  req.path = q < 0 ? req.target : req.target.substring(0, q);
  req.queryString = q < 0 ? "" : req.target.substring(q + 1);
  for (let i = 1; i < lines.length; i++) {
    const colon = lines[i].indexOf(":");
    if (colon < 0) continue;
    req.headerNames.push(lines[i].substring(0, colon));
    req.headerValues.push(lines[i].substring(colon + 1).trimStart());
  }
  return req;
}

export function handle(ptr: usize, len: i32): i64 {
  const req = __edgeParse(Uint8Array.wrap(__edgeInput, 0, len));
  const res = new EdgeResponse();
  onRequest(req, res);
  const head = String.UTF8.encode(res.status.toString() + "\n" + res.head + "\n");
  let total = head.byteLength;
  for (let i = 0; i < res.chunks.length; i++) total += res.chunks[i].byteLength;
  const out = new Uint8Array(total);
  out.set(Uint8Array.wrap(head), 0);
  let at = head.byteLength;
  for (let i = 0; i < res.chunks.length; i++) {
    out.set(Uint8Array.wrap(res.chunks[i]), at);
    at += res.chunks[i].byteLength;
  }
  __edgeOutput = out.buffer;
  return (i64(changetype<usize>(__edgeOutput)) << 32) | i64(total);
}
