
// ---- wasmlab edge handler helper for Rust (appended by wasmlab.edge after your code: its line numbers stay
// as you wrote them). You write:
//
//     fn on_request(req: &edge::Request, res: &mut edge::Response) {
//         res.set_header("content-type", "text/plain");
//         res.write_str("hello ");
//         res.write_str(req.query("name").unwrap_or("world"));
//     }
//
// ABI (wasmlab-edge/1): exports `memory`, `alloc(len) -> ptr` (a buffer for the request; each call starts a
// new request and frees the previous one) and `handle(ptr, len) -> i64` = (response_ptr << 32) | response_len.
#[allow(dead_code)]
pub mod edge {
    pub struct Request<'a> {
        pub method: &'a str,
        pub target: &'a str,
        pub path: &'a str,
        pub query_string: &'a str,
        pub headers: Vec<(&'a str, &'a str)>,
        pub body: &'a [u8],
    }

    impl<'a> Request<'a> {
        /// The value of header `name` (case-insensitive).
        pub fn header(&self, name: &str) -> Option<&'a str> {
            self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
        }
        /// The raw (not percent-decoded) value of query parameter `name`.
        pub fn query(&self, name: &str) -> Option<&'a str> {
            self.query_string.split('&').find_map(|pair| {
                let mut it = pair.splitn(2, '=');
                if it.next() == Some(name) { Some(it.next().unwrap_or("")) } else { None }
            })
        }
        /// The body as UTF-8 text (invalid bytes replaced).
        pub fn text(&self) -> String {
            String::from_utf8_lossy(self.body).into_owned()
        }
    }

    pub struct Response {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Response {
        pub fn set_status(&mut self, status: u16) {
            self.status = status;
        }
        pub fn set_header(&mut self, name: &str, value: &str) {
            self.headers.push((name.to_string(), value.to_string()));
        }
        pub fn write(&mut self, data: &[u8]) {
            self.body.extend_from_slice(data);
        }
        pub fn write_str(&mut self, text: &str) {
            self.body.extend_from_slice(text.as_bytes());
        }
    }

    fn parse(data: &[u8]) -> Request<'_> {
        let head_end = data.windows(2).position(|w| w == b"\n\n").map(|i| i + 1).unwrap_or(data.len());
        let head = std::str::from_utf8(&data[..head_end]).unwrap_or("");
        let body = if head_end < data.len() { &data[head_end + 1..] } else { &data[data.len()..] };
        let mut lines = head.split('\n');
        let first = lines.next().unwrap_or("");
        let (method, target) = match first.find(' ') {
            Some(i) => (&first[..i], &first[i + 1..]),
            None => (first, ""),
        };
        let (path, query_string) = match target.find('?') {
            Some(i) => (&target[..i], &target[i + 1..]),
            None => (target, ""),
        };
        let headers = lines
            .filter_map(|line| line.find(':').map(|i| (&line[..i], line[i + 1..].trim_start())))
            .collect();
        Request { method, target, path, query_string, headers, body }
    }

    static mut INPUT: Vec<u8> = Vec::new();
    static mut OUTPUT: Vec<u8> = Vec::new();

    #[export_name = "alloc"]
    pub extern "C" fn edge_alloc(len: u32) -> *mut u8 {
        unsafe {
            OUTPUT = Vec::new();
            INPUT = vec![0u8; (len as usize).max(1)];
            INPUT.as_mut_ptr()
        }
    }

    #[export_name = "handle"]
    pub extern "C" fn edge_handle(ptr: *const u8, len: u32) -> u64 {
        let data = unsafe { std::slice::from_raw_parts(ptr, len as usize) };
        let req = parse(data);
        let mut res = Response { status: 200, headers: Vec::new(), body: Vec::new() };
        super::on_request(&req, &mut res);
        let mut out = Vec::with_capacity(res.body.len() + 64);
        out.extend_from_slice(res.status.to_string().as_bytes());
        out.push(b'\n');
        for (k, v) in &res.headers {
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&res.body);
        unsafe {
            OUTPUT = out;
            ((OUTPUT.as_ptr() as u64) << 32) | OUTPUT.len() as u64
        }
    }
}
