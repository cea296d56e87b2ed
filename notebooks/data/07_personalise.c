/* Content personalisation at the edge: one page, rewritten per visitor by geography and device.
 *
 * Input (set by the CDN / the client):  x-geo-country (ISO 3166 code), user-agent, accept-language (optional),
 *                                       ?promo=... (optional query parameter)
 * Output: a small HTML page with a localised greeting, prices in the visitor's currency, a mobile or desktop
 *         layout, and headers that say what was chosen (so caches can `vary` on them).
 */

struct market {
    const char *country, *greeting, *currency, *symbol;
    int rate_x100; /* price multiplier x100 from the USD list price */
};

static const struct market MARKETS[] = {
    {"US", "Hello", "USD", "$", 100},       {"GB", "Hello", "GBP", "\xc2\xa3", 79},
    {"DE", "Hallo", "EUR", "\xe2\x82\xac", 92}, {"FR", "Bonjour", "EUR", "\xe2\x82\xac", 92},
    {"JP", "Konnichiwa", "JPY", "\xc2\xa5", 15000}, {"BR", "Ola", "BRL", "R$", 500},
    {"NZ", "Kia ora", "NZD", "NZ$", 165},   {"IN", "Namaste", "INR", "\xe2\x82\xb9", 8300},
};
static const struct market FALLBACK = {"--", "Welcome", "USD", "$", 100};

static const struct { const char *name; int usd_cents; } PRODUCTS[] = {
    {"Edge starter", 900}, {"Edge pro", 4900}, {"Edge fleet", 19900},
};

static int contains(edge_str s, const char *needle) {
    size_t n = strlen(needle);
    if (!s.ptr || n == 0 || s.len < n) return 0;
    for (size_t i = 0; i + n <= s.len; i++)
        if (memcmp(s.ptr + i, needle, n) == 0) return 1;
    return 0;
}

static int ends_with(edge_str s, const char *tail) {
    size_t n = strlen(tail);
    return s.ptr && s.len >= n && memcmp(s.ptr + s.len - n, tail, n) == 0;
}

static const struct market *market_for(edge_str country) {
    for (size_t i = 0; i < sizeof MARKETS / sizeof MARKETS[0]; i++)
        if (edge_eq(country, MARKETS[i].country)) return &MARKETS[i];
    return &FALLBACK;
}

static const char *device_for(edge_str ua) {
    if (!ua.ptr) return "unknown";
    if (contains(ua, "bot") || contains(ua, "Bot") || contains(ua, "curl")) return "bot";
    if (contains(ua, "iPad") || contains(ua, "Tablet")) return "tablet";
    if (contains(ua, "Mobile") || contains(ua, "Android") || contains(ua, "iPhone")) return "mobile";
    return "desktop";
}

static void write_price(edge_response *res, const struct market *m, int usd_cents) {
    long long local = (long long)usd_cents * m->rate_x100 / 100; /* in the local currency's cents */
    edge_write_str(res, m->symbol);
    if (m->rate_x100 >= 1000) { /* JPY, INR: no minor unit shown */
        edge_write_int(res, (local + 50) / 100);
    } else {
        edge_write_int(res, local / 100);
        edge_write_str(res, ".");
        if (local % 100 < 10) edge_write_str(res, "0");
        edge_write_int(res, local % 100);
    }
}

void on_request(const edge_request *req, edge_response *res) {
    if (!edge_eq(req->method, "GET")) {
        edge_status(res, 405);
        edge_set_header(res, "allow", "GET");
        edge_write_str(res, "method not allowed\n");
        return;
    }
    if (!ends_with(req->path, "/") && !ends_with(req->path, "/home")) { /* the page, under any route prefix */
        edge_status(res, 404);
        edge_write_str(res, "not found\n");
        return;
    }
    const struct market *m = market_for(edge_get_header(req, "x-geo-country"));
    const char *device = device_for(edge_get_header(req, "user-agent"));
    edge_str promo = edge_query(req, "promo");

    edge_set_header(res, "content-type", "text/html; charset=utf-8");
    edge_set_header(res, "vary", "x-geo-country, user-agent");
    edge_set_header(res, "x-market", m->country);
    edge_set_header(res, "x-currency", m->currency);
    edge_set_header(res, "x-device", device);
    edge_set_header(res, "cache-control", strcmp(device, "bot") == 0 ? "public, max-age=3600" : "private, max-age=60");

    edge_write_str(res, "<main class=\"");
    edge_write_str(res, strcmp(device, "mobile") == 0 ? "one-column" : "grid");
    edge_write_str(res, "\"><h1>");
    edge_write_str(res, m->greeting);
    edge_write_str(res, "!</h1>");
    if (promo.ptr && promo.len > 0 && promo.len <= 16) {
        edge_write_str(res, "<p class=promo>code ");
        for (size_t i = 0; i < promo.len; i++) { /* echo only [A-Z0-9]: no markup injection */
            char c = promo.ptr[i];
            if ((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) edge_write(res, &c, 1);
        }
        edge_write_str(res, "</p>");
    }
    size_t shown = strcmp(device, "mobile") == 0 ? 1 : sizeof PRODUCTS / sizeof PRODUCTS[0];
    for (size_t i = 0; i < shown; i++) {
        edge_write_str(res, "<p>");
        edge_write_str(res, PRODUCTS[i].name);
        edge_write_str(res, " ");
        write_price(res, m, PRODUCTS[i].usd_cents);
        edge_write_str(res, "</p>");
    }
    edge_write_str(res, "</main>\n");
}
