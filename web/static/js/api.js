// Every call the storefront makes to the shop's services, through the web
// gateway's /api/<service>/ prefixes (docs/api/). No framework: fetch().
// Path segments are always encodeURIComponent()-ed.

const enc = (s) => encodeURIComponent(String(s));

/** An HTTP error (status > 0) or a network failure (status 0). */
export class ApiError extends Error {
  constructor(service, status, text, contentType, data) {
    super(`${service}: HTTP ${status}`);
    this.name = 'ApiError';
    this.service = service;
    this.status = status;          // 0 = no answer (network error, blocked, offline)
    this.text = text || '';        // raw response body
    this.contentType = contentType || '';
    this.data = data;              // parsed JSON body, when it was JSON
  }

  /** True when the body is a short human-readable sentence (not HTML, not JSON). */
  get plainText() {
    const t = this.text.trim();
    return t !== '' && t.length <= 300 && !/^</.test(t) && this.data === undefined;
  }

  /** The service is not there at all: not deployed (404 from the gateway), down, or timing out. */
  get absent() {
    return this.status === 0 || this.status === 404 || this.status === 502 ||
      this.status === 503 || this.status === 504;
  }
}

async function call(service, method, path, body) {
  const init = { method, headers: { Accept: 'application/json, text/plain, */*' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/api/${service}/${path}`, init);
  } catch (e) {
    throw new ApiError(service, 0, String(e && e.message || e), '', undefined);
  }
  const type = res.headers.get('Content-Type') || '';
  let text = '';
  try { text = await res.text(); } catch { /* body lost: keep '' */ }
  let data;
  if (/json/i.test(type) || /^\s*[[{]/.test(text)) {
    try { data = JSON.parse(text); } catch { data = undefined; }
  }
  if (!res.ok) throw new ApiError(service, res.status, text, type, data);
  return data !== undefined ? data : text;
}

const get = (svc, path) => call(svc, 'GET', path);

/** Turn any failure into one sentence for the page. `what` says what was being done. */
export function describeError(err, what) {
  if (!(err instanceof ApiError)) return `${what}: ${err && err.message || err}`;
  // The user service answers errors in plain text, shown verbatim (docs/api/user.yaml).
  if (err.service === 'user' && err.plainText && err.status < 500) return `ERROR ${err.text.trim()}`;
  if (err.status === 0) return `${what}: the shop can't be reached right now (network error).`;
  let reason = '';
  if (err.plainText) reason = err.text.trim();
  else if (err.data && typeof err.data === 'object') reason = err.data.message || err.data.error || '';
  if (!reason) {
    reason = {
      400: 'the request was not accepted',
      401: 'your shopping session has expired, please reload the page',
      403: 'this belongs to another shopping session',
      404: 'not found',
      413: 'too much data',
      500: 'something went wrong on our side',
      502: `the ${err.service} service is not available`,
      503: `the ${err.service} service is not available`,
      504: `the ${err.service} service took too long to answer`,
    }[err.status] || 'unexpected answer';
  }
  if (err.service === 'user' && err.plainText) return `ERROR ${reason} (HTTP ${err.status})`;
  return `${what}: ${reason} (HTTP ${err.status})`;
}

/** Search text can't carry "/" in one path segment; the search is word based anyway. */
export const cleanSearch = (s) => String(s).replace(/[/\\]+/g, ' ').replace(/\s+/g, ' ').trim();

export const catalogue = {
  categories: () => get('catalogue', 'categories'),
  products: () => get('catalogue', 'products'),
  productsIn: (category) => get('catalogue', `products/${enc(category)}`),
  product: (sku) => get('catalogue', `product/${enc(sku)}`),
  search: (text) => get('catalogue', `search/${enc(cleanSearch(text))}`),
};

export const user = {
  uniqueid: () => get('user', 'uniqueid'),
  login: (name, password) => call('user', 'POST', 'login', { name, password }),
  register: (name, email, password) => call('user', 'POST', 'register', { name, email, password }),
  history: (name) => get('user', `history/${enc(name)}`),
  logout: () => call('user', 'POST', 'logout'),
};

export const cart = {
  get: (id) => get('cart', `cart/${enc(id)}`),
  add: (id, sku, qty) => get('cart', `add/${enc(id)}/${enc(sku)}/${enc(qty)}`),
  update: (id, sku, qty) => get('cart', `update/${enc(id)}/${enc(sku)}/${enc(qty)}`),
  rename: (from, to) => get('cart', `rename/${enc(from)}/${enc(to)}`),
};

export const shipping = {
  codes: () => get('shipping', 'codes'),
  match: (code, text) => get('shipping', `match/${enc(code)}/${enc(text)}`),
  calc: (uuid) => get('shipping', `calc/${enc(uuid)}`),
  confirm: (id, body) => call('shipping', 'POST', `confirm/${enc(id)}`, body),
};

export const payment = {
  pay: (id, cartDoc) => call('payment', 'POST', `pay/${enc(id)}`, cartDoc),
};

export const ratings = {
  fetch: (sku) => get('ratings', `api/fetch/${enc(sku)}`),
  rate: (sku, score) => call('ratings', 'PUT', `api/rate/${enc(sku)}/${enc(score)}`),
};
