// The API client: same-origin fetch with the session cookie, contract errors as ApiError.

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code || 'http_error';
  }
}

let onUnauthorized = () => {};
/** Called when any call answers 401 (the session ended). */
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

const PREFIX = '/api/v1';

/** Builds a query string from an object, skipping empty values. */
export function qs(params = {}) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== null && v !== undefined && v !== '') p.set(k, String(v));
  }
  const s = p.toString();
  return s ? `?${s}` : '';
}

/** A request: `headers` are added; `timeoutMs` gives up waiting (the answer may still come). */
export async function call(method, path, body, headers = {}, timeoutMs = 0) {
  const init = { method, headers: { Accept: 'application/json', ...headers }, credentials: 'same-origin' };
  let timer = null;
  if (timeoutMs) {
    const abort = new AbortController();
    init.signal = abort.signal;
    timer = setTimeout(() => abort.abort(), timeoutMs);
  }
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(PREFIX + path, init);
  } catch (e) {
    if (e && e.name === 'AbortError') throw new ApiError(0, 'timeout', 'The server did not answer in time.');
    throw new ApiError(0, 'network', 'The server could not be reached. Check your connection.');
  } finally {
    clearTimeout(timer);
  }
  if (res.status === 204) return null;
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {};
    if (res.status === 401 && path !== '/auth/login') onUnauthorized();
    throw new ApiError(res.status, err.code, err.message);
  }
  return data;
}

export const api = {
  get: (path, params) => call('GET', path + qs(params)),
  post: (path, body = {}, headers, timeoutMs) => call('POST', path, body, headers, timeoutMs),
  put: (path, body) => call('PUT', path, body),
  patch: (path, body) => call('PATCH', path, body),
  del: (path, body) => call('DELETE', path, body),
};

/** Follows next_cursor to collect a whole (bounded) list. */
export async function all(path, key, params = {}, max = 1000) {
  const out = [];
  let cursor = null;
  do {
    const page = await api.get(path, { ...params, limit: 200, cursor });
    out.push(...(page[key] || []));
    cursor = page.next_cursor;
  } while (cursor && out.length < max);
  return out;
}
