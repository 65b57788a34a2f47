// What the SPA team does with isis: a client generated from the live
// /api/schema/ (openapi-typescript, in gen/api.ts: a .ts, so that
// skipLibCheck, which spares node_modules, still checks it) driven through
// openapi-fetch, type-checked with tsc --strict, then run against the live
// server (cmd/isis/tsclient_test.go does all of it). Every operation of the
// document is called; the program fails when one is not, when an answer is
// not the one expected, or (at compile time) when the types lie about what
// the server sends.
import createClient, { type Middleware } from "openapi-fetch";
import { readFileSync } from "node:fs";
import type { components, paths } from "./gen/api.js";

type Schemas = components["schemas"];

// ---- Compile-time checks: each line fails tsc --strict when the document
// describes the server wrongly.
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function assertType<T extends true>(): T | undefined {
  return undefined;
}
// A profile's places may be null (the server sends null).
assertType<Equal<Schemas["Profile"]["department"], Schemas["Place"] | null>>();
assertType<Equal<Schemas["Profile"]["municipality"], Schemas["Place"] | null>>();
// Ids are integers, in bodies and in paths.
assertType<Equal<paths["/api/users/{id}/"]["get"]["parameters"]["path"]["id"], number>>();
assertType<Equal<paths["/api/profiles/{id}/"]["get"]["parameters"]["path"]["id"], number>>();
assertType<Equal<Schemas["User"]["id"], number>>();
// The schema route says what it returns.
type SchemaBody = paths["/api/schema/"]["get"]["responses"][200]["content"]["application/json"];
assertType<Equal<SchemaBody extends Record<string, unknown> ? true : false, true>>();
// Answers declare their headers.
type DeptListHeaders = paths["/api/departments/"]["get"]["responses"][200]["headers"];
assertType<Equal<DeptListHeaders["ETag"], string>>();
assertType<Equal<DeptListHeaders["X-Request-ID"], string>>();
type Throttled = paths["/api/token/"]["post"]["responses"][429];
assertType<Equal<Throttled["headers"]["Retry-After"], number>>();
assertType<Equal<paths["/api/users/me/"]["get"]["responses"][401]["headers"]["WWW-Authenticate"], string>>();
assertType<Equal<paths["/api/users/me/"]["options"]["responses"][200]["headers"]["Allow"], string>>();
// ?page=last is a page.
const lastPage: NonNullable<paths["/api/departments/"]["get"]["parameters"]["query"]>["page"] = "last";

// ---- Run time.
const base = process.env.API_URL ?? "";
const schemaFile = process.env.SCHEMA_FILE ?? "";
const staffEmail = process.env.STAFF_EMAIL ?? "";
const staffPassword = process.env.STAFF_PASSWORD ?? "";
if (!base || !schemaFile || !staffEmail || !staffPassword) {
  throw new Error("API_URL, SCHEMA_FILE, STAFF_EMAIL and STAFF_PASSWORD are needed");
}

let failed = 0;
let passed = 0;
function check(ok: boolean, what: string): void {
  if (ok) {
    passed++;
  } else {
    failed++;
    console.error(`FAIL ${what}`);
  }
}

// Which operations were called: "METHOD /documented/path/".
const called = new Set<string>();
const record: Middleware = {
  onRequest({ request, schemaPath }) {
    called.add(`${request.method} ${schemaPath}`);
    return undefined;
  },
  onResponse({ request, response, schemaPath }) {
    check(response.headers.get("X-Request-ID") !== null, `${request.method} ${schemaPath}: X-Request-ID`);
    return undefined;
  },
};
function client(token?: string) {
  const c = createClient<paths>({ baseUrl: base, headers: token ? { Authorization: `Bearer ${token}` } : {} });
  c.use(record);
  return c;
}

const anon = client();
const stamp = Date.now().toString(36);
const email = `ts-${stamp}@example.com`;
const password = "correct-horse-battery-9";

// Health and the document.
{
  const root = await anon.GET("/api/");
  check(root.response.status === 200 && root.data?.name === "isis", "GET /api/");
  check((await anon.HEAD("/api/")).response.status === 200, "HEAD /api/");
  const health = await anon.GET("/api/health/");
  check(health.data?.status === "ok", "GET /api/health/");
  check((await anon.HEAD("/api/health/")).response.status === 200, "HEAD /api/health/");
  const ready = await anon.GET("/api/ready/");
  check(ready.data?.database === "ok", "GET /api/ready/");
  check((await anon.HEAD("/api/ready/")).response.status === 200, "HEAD /api/ready/");
  const schema = await anon.GET("/api/schema/");
  check(schema.data?.["openapi"] === "3.0.3", "GET /api/schema/");
  check((await anon.HEAD("/api/schema/")).response.status === 200, "HEAD /api/schema/");
}

// Register, log in, tokens.
const reg = await anon.POST("/api/auth/register/", { body: { email, password, first_name: "Ana" } });
check(reg.response.status === 201 && reg.data?.email === email, "POST /api/auth/register/");
const bad = await anon.POST("/api/auth/register/", { body: { email: "not-an-email", password } });
check(bad.response.status === 400 && bad.error?.code === "invalid" && (bad.error.errors?.["email"]?.length ?? 0) > 0,
  "POST /api/auth/register/ invalid: the error envelope, typed");
const pair = await anon.POST("/api/token/", { body: { email, password } });
check(pair.response.status === 200 && !!pair.data?.access, "POST /api/token/");
const access = pair.data?.access ?? "";
const refresh = pair.data?.refresh ?? "";
const refreshed = await anon.POST("/api/token/refresh/", { body: { refresh } });
check(refreshed.response.status === 200 && !!refreshed.data?.access, "POST /api/token/refresh/");
const verified = await anon.POST("/api/token/verify/", { body: { token: access } });
check(verified.response.status === 200, "POST /api/token/verify/");
const google = await anon.POST("/api/auth/google/", { body: { id_token: "x" } });
check(google.response.status === 404 && google.error?.code === "not_found", "POST /api/auth/google/ (not configured)");

const me = client(access);
const staffPair = await anon.POST("/api/token/", { body: { email: staffEmail, password: staffPassword } });
check(staffPair.response.status === 200, "POST /api/token/ (staff)");
const staff = client(staffPair.data?.access ?? "");

// The user.
{
  const u = await me.GET("/api/users/me/");
  check(u.data?.email === email && u.data.last_login !== undefined, "GET /api/users/me/");
  check((await me.HEAD("/api/users/me/")).response.status === 200, "HEAD /api/users/me/");
  const p = await me.PATCH("/api/users/me/", { body: { last_name: "Gómez" } });
  check(p.data?.last_name === "Gómez", "PATCH /api/users/me/");
  const put = await me.PUT("/api/users/me/", { body: { first_name: "Ana María" } });
  check(put.data?.first_name === "Ana María", "PUT /api/users/me/");
  const nul = await me.PATCH("/api/users/me/", { body: JSON.parse('{"first_name": null}') });
  check(nul.response.status === 400 && nul.error?.errors?.["first_name"]?.[0] === "This field may not be null.", "PATCH /api/users/me/ null");
  const del = await me.DELETE("/api/users/me/" as never);
  check(del.response.status === 405 && del.response.headers.get("Allow") === "GET, PUT, PATCH, HEAD, OPTIONS", "DELETE /api/users/me/ is 405 with Allow");
  const anonMe = await anon.GET("/api/users/me/");
  check(anonMe.response.status === 401 && anonMe.error?.code === "not_authenticated" &&
    anonMe.response.headers.get("WWW-Authenticate") !== null, "GET /api/users/me/ anonymous");
}
const myId = (await me.GET("/api/users/me/")).data?.id ?? 0;

// Profiles.
{
  const p = await me.GET("/api/profiles/me/");
  // Strict code must handle null places: this compiles only with the check.
  const dep: string = p.data?.department?.name ?? "(none)";
  check(p.data?.department === null && dep === "(none)", "GET /api/profiles/me/: department null");
  check((await me.HEAD("/api/profiles/me/")).response.status === 200, "HEAD /api/profiles/me/");
  const up = await me.PATCH("/api/profiles/me/", { body: { department_code: "05", municipality_code: "05001", birth_date: "1990-05-01" } });
  check(up.data?.municipality?.name === "Medellín" && up.data.department?.code === "05", "PATCH /api/profiles/me/");
  const put = await me.PUT("/api/profiles/me/", { body: { bio: "hola", department_code: null, municipality_code: null } });
  check(put.data?.bio === "hola" && put.data.municipality === null, "PUT /api/profiles/me/");
  const id = put.data?.id ?? 0;
  const view = await me.GET("/api/profiles/{id}/", { params: { path: { id } } });
  check(view.data?.id === id, "GET /api/profiles/{id}/");
  check((await me.HEAD("/api/profiles/{id}/", { params: { path: { id } } })).response.status === 200, "HEAD /api/profiles/{id}/");

  // A 1x1 PNG.
  const png = Uint8Array.from(atob("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="), (c) => c.charCodeAt(0));
  const form = () => {
    const f = new FormData();
    f.append("file", new Blob([png], { type: "image/png" }), "a.png");
    return f;
  };
  const putAvatar = await me.PUT("/api/profiles/me/avatar/", { body: { file: "" }, bodySerializer: form });
  check(putAvatar.response.status === 200 && typeof putAvatar.data?.avatar_url === "string", "PUT /api/profiles/me/avatar/");
  const postAvatar = await me.POST("/api/profiles/me/avatar/", { body: { file: "" }, bodySerializer: form });
  check(postAvatar.response.status === 200, "POST /api/profiles/me/avatar/");
  const avatarURL = postAvatar.data?.avatar_url ?? "";
  const mediaPath = decodeURIComponent(new URL(avatarURL || base).pathname.replace(/^\/media\//, ""));
  const media = await anon.GET("/media/{path}", { params: { path: { path: mediaPath } }, parseAs: "blob" });
  check(media.response.status === 200 && (media.data?.size ?? 0) > 0, "GET /media/{path}");
  check((await anon.HEAD("/media/{path}", { params: { path: { path: mediaPath } } })).response.status === 200, "HEAD /media/{path}");
  const delAvatar = await me.DELETE("/api/profiles/me/avatar/");
  check(delAvatar.response.status === 204, "DELETE /api/profiles/me/avatar/");
}

// Password, then log out.
{
  const bad = await me.POST("/api/users/me/password/", { body: { old_password: "wrong", new_password: "another-good-pass-77" } });
  check(bad.response.status === 400 && bad.error?.errors?.["old_password"] !== undefined, "POST /api/users/me/password/ wrong");
  const ok = await me.POST("/api/users/me/password/", { body: { old_password: password, new_password: "another-good-pass-77" } });
  check(ok.response.status === 200, "POST /api/users/me/password/");
  const out = await anon.POST("/api/token/blacklist/", { body: { refresh } });
  check(out.response.status === 200 || out.response.status === 401, "POST /api/token/blacklist/");
}

// Staff: users.
{
  const list = await staff.GET("/api/users/", { params: { query: { search: stamp, page_size: 10 } } });
  check(list.data?.count === 1 && list.data.results[0]?.id === myId, "GET /api/users/");
  check((await staff.HEAD("/api/users/")).response.status === 200, "HEAD /api/users/");
  const one = await staff.GET("/api/users/{id}/", { params: { path: { id: myId } } });
  check(one.data?.id === myId, "GET /api/users/{id}/");
  check((await staff.HEAD("/api/users/{id}/", { params: { path: { id: myId } } })).response.status === 200, "HEAD /api/users/{id}/");
  const patch = await staff.PATCH("/api/users/{id}/", { params: { path: { id: myId } }, body: { last_name: "Staffed" } });
  check(patch.data?.last_name === "Staffed", "PATCH /api/users/{id}/");
  const put = await staff.PUT("/api/users/{id}/", { params: { path: { id: myId } }, body: { first_name: "Put" } });
  check(put.data?.first_name === "Put", "PUT /api/users/{id}/");
  const del = await staff.DELETE("/api/users/{id}/", { params: { path: { id: myId } } });
  check(del.response.status === 204, "DELETE /api/users/{id}/");
  const gone = await staff.GET("/api/users/{id}/", { params: { path: { id: 2147483647 } } });
  check(gone.response.status === 404 && gone.error?.code === "not_found", "GET /api/users/{id}/ unknown");
}

// Geography: public reads with ETag, staff writes.
{
  const deps = await anon.GET("/api/departments/", { params: { query: { page_size: 10, page: lastPage } } });
  const etag = deps.response.headers.get("ETag");
  const count = deps.data?.count ?? 0;
  check(count >= 33 && deps.data?.results.length === count - 10 * Math.floor((count - 1) / 10) && etag !== null, "GET /api/departments/?page=last");
  const again = await anon.GET("/api/departments/", { params: { query: { page_size: 10, page: lastPage } }, headers: { "If-None-Match": etag ?? "" } });
  check(again.response.status === 304, "GET /api/departments/ If-None-Match: 304");
  check((await anon.HEAD("/api/departments/")).response.status === 200, "HEAD /api/departments/");
  const one = await anon.GET("/api/departments/{code}/", { params: { path: { code: "05" } } });
  check(one.data?.municipality_count === 125, "GET /api/departments/{code}/");
  check((await anon.HEAD("/api/departments/{code}/", { params: { path: { code: "05" } } })).response.status === 200, "HEAD /api/departments/{code}/");
  const nested = await anon.GET("/api/departments/{code}/municipalities/", { params: { path: { code: "05" }, query: { search: "medellin" } } });
  check(nested.data?.results[0]?.name === "Medellín", "GET /api/departments/{code}/municipalities/");
  check((await anon.HEAD("/api/departments/{code}/municipalities/", { params: { path: { code: "05" } } })).response.status === 200,
    "HEAD /api/departments/{code}/municipalities/");
  const muns = await anon.GET("/api/municipalities/", { params: { query: { department: "05", page: 2, page_size: 50 } } });
  check(muns.data?.count === 125 && muns.data.next !== null && muns.data.previous !== null, "GET /api/municipalities/");
  check((await anon.HEAD("/api/municipalities/")).response.status === 200, "HEAD /api/municipalities/");
  const mun = await anon.GET("/api/municipalities/{code}/", { params: { path: { code: "05001" } } });
  check(mun.data?.department_name === "Antioquia", "GET /api/municipalities/{code}/");
  check((await anon.HEAD("/api/municipalities/{code}/", { params: { path: { code: "05001" } } })).response.status === 200, "HEAD /api/municipalities/{code}/");

  const code = "0" + String(1 + Math.floor(Math.random() * 4)); // 01-04: no DIVIPOLA department
  await staff.DELETE("/api/departments/{code}/", { params: { path: { code } } }); // a leftover of an earlier run
  const dep = await staff.POST("/api/departments/", { body: { code, name: "Prueba TS" } });
  check(dep.response.status === 201 && dep.data?.municipality_count === 0, "POST /api/departments/");
  const forbidden = await me.POST("/api/departments/", { body: { code, name: "x" } });
  check(forbidden.response.status === 401 || forbidden.response.status === 403, "POST /api/departments/ not staff");
  const ren = await staff.PATCH("/api/departments/{code}/", { params: { path: { code } }, body: { name: "Prueba TS 2" } });
  check(ren.data?.name === "Prueba TS 2", "PATCH /api/departments/{code}/");
  const rep = await staff.PUT("/api/departments/{code}/", { params: { path: { code } }, body: { name: "Prueba TS 3" } });
  check(rep.data?.name === "Prueba TS 3", "PUT /api/departments/{code}/");
  const m = await staff.POST("/api/municipalities/", { body: { code: code + "001", name: "Pueblo", department_code: code } });
  check(m.response.status === 201 && m.data?.department_code === code, "POST /api/municipalities/");
  const held = await staff.DELETE("/api/departments/{code}/", { params: { path: { code } } });
  check(held.response.status === 409 && held.error?.code === "conflict" && (held.error.detail ?? "").includes("municipalities"), "DELETE /api/departments/{code}/ held");
  const mren = await staff.PATCH("/api/municipalities/{code}/", { params: { path: { code: code + "001" } }, body: { name: "Pueblo 2" } });
  check(mren.data?.name === "Pueblo 2", "PATCH /api/municipalities/{code}/");
  const mrep = await staff.PUT("/api/municipalities/{code}/", { params: { path: { code: code + "001" } }, body: { name: "Pueblo 3" } });
  check(mrep.data?.name === "Pueblo 3", "PUT /api/municipalities/{code}/");
  const mdel = await staff.DELETE("/api/municipalities/{code}/", { params: { path: { code: code + "001" } } });
  check(mdel.response.status === 204, "DELETE /api/municipalities/{code}/");
  const ddel = await staff.DELETE("/api/departments/{code}/", { params: { path: { code } } });
  check(ddel.response.status === 204, "DELETE /api/departments/{code}/");
}

// Static files.
{
  const page = await anon.GET("/static/{path}", { params: { path: { path: "docs/index.html" } }, parseAs: "text" });
  check(page.response.status === 200 && (page.data ?? "").includes("<"), "GET /static/{path}");
  check((await anon.HEAD("/static/{path}", { params: { path: { path: "docs/index.html" } } })).response.status === 200, "HEAD /static/{path}");
}

// OPTIONS on every path: 200 with Allow, and the rest of the document's
// operations (those added since this program was written) called untyped.
// The paths without their trailing slash (x-isis-alias-of) are called
// untyped too: the same operations, answering the same way.
type Op = { method: string; path: string; alias: boolean };
const doc = JSON.parse(readFileSync(schemaFile, "utf8")) as { paths: Record<string, Record<string, { security?: unknown[] }>> };
const ops: Op[] = [];
for (const [path, item] of Object.entries(doc.paths)) {
  const alias = "x-isis-alias-of" in item;
  for (const [method, op] of Object.entries(item)) {
    if (["get", "put", "post", "delete", "options", "head", "patch"].includes(method)) {
      ops.push({ method: method.toUpperCase(), path, alias });
      check(Array.isArray(op.security), `${method.toUpperCase()} ${path}: security stated (public ones: [])`);
    }
  }
}
const sample: Record<string, string> = { "{id}": String(myId), "{code}": "05", "{path}": "docs%2Findex.html" };
const concrete = (p: string) =>
  p.replace(/\{[a-z_]+\}/g, (k) => (k === "{code}" && p.startsWith("/api/municipalities") ? "05001" : sample[k] ?? "x"));
for (const op of ops.filter((o) => o.method === "OPTIONS")) {
  const res = await fetch(base + concrete(op.path), { method: "OPTIONS" });
  called.add(`OPTIONS ${op.path}`);
  check(res.status === 200 && (res.headers.get("Allow") ?? "").includes("OPTIONS"), `OPTIONS ${op.path}`);
}
for (const op of ops) {
  const key = `${op.method} ${op.path}`;
  if (called.has(key)) continue;
  if (!op.alias) console.log(`WARNING: ${key} is not in the typed program yet: called untyped`);
  const res = await fetch(base + concrete(op.path), { method: op.method });
  called.add(key);
  const documented = Object.keys((doc.paths[op.path]?.[op.method.toLowerCase()] as { responses?: object })?.responses ?? {});
  check(documented.includes(String(res.status)), `${key}: answered ${res.status}, a documented status`);
}

console.log(`${ops.length} operations called (${ops.filter((o) => o.alias).length} of them on paths without the trailing slash); ${passed} passed, ${failed} failed`);
if (failed > 0) process.exit(1);
