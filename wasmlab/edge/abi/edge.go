
// ---- wasmlab edge handler helper for Go (appended by wasmlab.edge after your code; the `unsafe` import it
// needs is added on your package line, so your line numbers stay as you wrote them). You write:
//
//	func onRequest(req *EdgeRequest, res *EdgeResponse) {
//		res.SetHeader("content-type", "text/plain")
//		res.WriteString("hello " + req.Query("name"))
//	}
//
// ABI (wasmlab-edge/1): exports `memory`, `alloc(len) -> ptr` (a buffer for the request; each call starts a
// new request and frees the previous one) and `handle(ptr, len) -> i64` = (response_ptr << 32) | response_len.

type EdgeRequest struct {
	Method, Target, Path, QueryString string
	Headers                           [][2]string // lower-case names, in order
	Body                              []byte
}

// Header returns the value of header `name` (case-insensitive), or "".
func (r *EdgeRequest) Header(name string) string {
	for _, h := range r.Headers {
		if edgeEqualFold(h[0], name) {
			return h[1]
		}
	}
	return ""
}

// Query returns the raw (not percent-decoded) value of query parameter `name`, or "".
func (r *EdgeRequest) Query(name string) string {
	q := r.QueryString
	for len(q) > 0 {
		pair := q
		if i := edgeIndex(q, '&'); i >= 0 {
			pair, q = q[:i], q[i+1:]
		} else {
			q = ""
		}
		key, value := pair, ""
		if i := edgeIndex(pair, '='); i >= 0 {
			key, value = pair[:i], pair[i+1:]
		}
		if key == name {
			return value
		}
	}
	return ""
}

type EdgeResponse struct {
	Status  int
	Headers [][2]string
	Body    []byte
}

func (r *EdgeResponse) SetStatus(status int)           { r.Status = status }
func (r *EdgeResponse) SetHeader(name, value string)   { r.Headers = append(r.Headers, [2]string{name, value}) }
func (r *EdgeResponse) Write(data []byte) (int, error) { r.Body = append(r.Body, data...); return len(data), nil }
func (r *EdgeResponse) WriteString(text string)        { r.Body = append(r.Body, text...) }

func edgeIndex(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func edgeEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 32
		}
		if 'A' <= y && y <= 'Z' {
			y += 32
		}
		if x != y {
			return false
		}
	}
	return true
}

func edgeParse(data []byte) *EdgeRequest {
	req := &EdgeRequest{}
	text := string(data)
	line := func() string {
		i := edgeIndex(text, '\n')
		if i < 0 {
			l := text
			text = ""
			return l
		}
		l := text[:i]
		text = text[i+1:]
		return l
	}
	first := line()
	if i := edgeIndex(first, ' '); i >= 0 {
		req.Method, req.Target = first[:i], first[i+1:]
	} else {
		req.Method = first
	}
	req.Path = req.Target
	if i := edgeIndex(req.Target, '?'); i >= 0 {
		req.Path, req.QueryString = req.Target[:i], req.Target[i+1:]
	}
	for len(text) > 0 && text[0] != '\n' {
		h := line()
		if i := edgeIndex(h, ':'); i >= 0 {
			v := h[i+1:]
			for len(v) > 0 && v[0] == ' ' {
				v = v[1:]
			}
			req.Headers = append(req.Headers, [2]string{h[:i], v})
		}
	}
	if len(text) > 0 {
		text = text[1:]
	}
	req.Body = []byte(text)
	return req
}

var edgeInput, edgeOutput []byte

//go:wasmexport alloc
func edgeAlloc(n int32) int32 {
	edgeOutput = nil
	if n < 1 {
		n = 1
	}
	edgeInput = make([]byte, n)
	return int32(uintptr(edgeunsafe.Pointer(&edgeInput[0])))
}

//go:wasmexport handle
func edgeHandle(ptr, n int32) int64 {
	req := edgeParse(edgeInput[:n])
	res := &EdgeResponse{Status: 200}
	onRequest(req, res)
	out := make([]byte, 0, len(res.Body)+64)
	s := res.Status
	out = append(out, byte('0'+s/100%10), byte('0'+s/10%10), byte('0'+s%10), '\n')
	for _, h := range res.Headers {
		out = append(out, h[0]...)
		out = append(out, ':', ' ')
		out = append(out, h[1]...)
		out = append(out, '\n')
	}
	out = append(out, '\n')
	out = append(out, res.Body...)
	edgeOutput = out
	if len(out) == 0 {
		return 0
	}
	return int64(uintptr(edgeunsafe.Pointer(&out[0])))<<32 | int64(len(out))
}
