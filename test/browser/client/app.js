// The isis reference client: what an SPA on another origin needs from the
// API, with no framework. The API base URL comes from ?api=…
const params = new URLSearchParams(location.search);
const API = (params.get('api') || 'http://127.0.0.1:3003').replace(/\/$/, '');
const $ = (id) => document.getElementById(id);
$('api').textContent = API;

// Tokens live in memory only, as the SPA keeps them.
const tokens = { access: null, refresh: null };

export class ApiError extends Error {
  constructor(status, body, headers) {
    super(body.detail || `HTTP ${status}`);
    this.status = status;
    this.code = body.code;
    this.requestId = body.request_id;
    this.errors = body.errors;
    this.headerRequestId = headers.get('X-Request-ID');
    this.retryAfter = headers.get('Retry-After');
  }
}

// api calls the API; a non-2xx answer becomes an ApiError built from the
// error envelope and the exposed headers.
async function api(path, { method = 'GET', body, auth = true } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth && tokens.access) headers['Authorization'] = `Bearer ${tokens.access}`;
  const res = await fetch(path.startsWith('http') ? path : API + path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  const data = text ? JSON.parse(text) : {};
  if (!res.ok) throw new ApiError(res.status, data, res.headers);
  return data;
}

function showError(err) {
  const box = $('error');
  if (err instanceof ApiError) {
    box.dataset.status = err.status;
    box.dataset.code = err.code || '';
    box.dataset.requestId = err.requestId || '';
    box.dataset.headerRequestId = err.headerRequestId || '';
    box.dataset.retryAfter = err.retryAfter || '';
    box.textContent = `${err.status} ${err.code}: ${err.message}\nrequest_id ${err.requestId}` +
      (err.retryAfter ? `\nRetry-After ${err.retryAfter}s` : '') +
      (err.errors ? `\n${JSON.stringify(err.errors)}` : '');
  } else {
    box.dataset.status = '0';
    box.dataset.code = 'network';
    box.textContent = `network error (the API did not answer, or CORS refused it): ${err.message}`;
  }
}

function clearError() {
  const box = $('error');
  box.textContent = '';
  for (const k of Object.keys(box.dataset)) delete box.dataset[k];
}

// run wraps a click handler: errors go to the error box.
const run = (fn) => async () => {
  clearError();
  try { await fn(); } catch (err) { showError(err); }
};

$('reg-submit').onclick = run(async () => {
  const u = await api('/api/auth/register/', { method: 'POST', auth: false, body: {
    email: $('reg-email').value, password: $('reg-password').value, first_name: $('reg-first').value,
  } });
  $('reg-status').textContent = `registered #${u.id}`;
});

$('login-submit').onclick = run(async () => {
  const t = await api('/api/token/', { method: 'POST', auth: false, body: {
    email: $('login-email').value, password: $('login-password').value,
  } });
  Object.assign(tokens, t);
  $('login-status').textContent = 'logged in';
  const me = await api('/api/users/me/');
  $('who').textContent = me.email;
});

$('me-load').onclick = run(async () => {
  const me = await api('/api/users/me/');
  $('me').textContent = `${me.email} (${me.first_name || 'no name'}), joined ${me.date_joined}`;
});

$('refresh').onclick = run(async () => {
  const before = tokens.access;
  const t = await api('/api/token/refresh/', { method: 'POST', auth: false, body: { refresh: tokens.refresh } });
  tokens.access = t.access;
  if (t.refresh) tokens.refresh = t.refresh;
  $('refresh-status').textContent = t.access !== before ? 'access token refreshed' : 'same token';
});

$('logout').onclick = run(async () => {
  await api('/api/token/blacklist/', { method: 'POST', auth: false, body: { refresh: tokens.refresh } });
  tokens.access = null; // SimpleJWT: the access token lives on until it expires; the client drops it
  $('who').textContent = 'nobody';
  $('logout-status').textContent = 'logged out';
});

$('departments-load').onclick = run(async () => {
  const page = await api('/api/departments/?page_size=100');
  $('departments').replaceChildren(...page.results.map((d) => {
    const o = document.createElement('option');
    o.value = d.code;
    o.textContent = `${d.code} ${d.name} (${d.municipality_count})`;
    return o;
  }));
  $('departments').dataset.count = page.count;
});

// Municipalities of the chosen department, following the `next` links.
$('municipalities-load').onclick = run(async () => {
  const code = $('dept-code').value || $('departments').value;
  let url = `/api/departments/${encodeURIComponent(code)}/municipalities/?page_size=20`;
  const all = [];
  let pages = 0;
  while (url) {
    const page = await api(url);
    all.push(...page.results);
    pages++;
    url = page.next;
  }
  $('municipalities').replaceChildren(...all.map((m) => {
    const li = document.createElement('li');
    li.textContent = `${m.code} ${m.name}`;
    return li;
  }));
  $('mun-count').textContent = `${all.length} municipalities`;
  $('mun-count').dataset.count = all.length;
  $('mun-pages').textContent = `in ${pages} pages`;
  $('mun-pages').dataset.pages = pages;
});

// For the test: a plain probe anybody can run.
window.isisProbe = async (path) => {
  try {
    const res = await fetch(API + path);
    return { ok: true, status: res.status, body: await res.text() };
  } catch (err) {
    return { ok: false, error: String(err) };
  }
};
