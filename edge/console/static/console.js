// Every logged-in page: the session's CSRF token, a POST helper, and the page's own behaviour
// (chosen by <body data-page>). The DOM is built with textContent only: names and messages
// from the device are never parsed as HTML.
"use strict";
const page = document.body.dataset.page;
let csrf = null;

function el(tag, text, cls) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
}
function say(text, kind) {
  const m = document.getElementById("message");
  m.textContent = text || "";
  m.className = `message ${kind || ""}`;
}
async function getJSON(url) {
  const res = await fetch(url, { credentials: "same-origin" });
  if (res.status === 401) { window.location.assign("/console/login"); throw new Error("logged out"); }
  return res.json();
}
async function post(url, body) {
  const isForm = body instanceof FormData;
  const res = await fetch(url, {
    method: "POST", credentials: "same-origin",
    headers: isForm ? { "X-CSRF-Token": csrf } : { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
    body: isForm ? body : JSON.stringify(body || {}),
  });
  if (res.status === 401) { window.location.assign("/console/login"); throw new Error("logged out"); }
  const data = await res.json().catch(() => ({}));
  return { ok: res.ok, status: res.status, data };
}
function fmt(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }

// --- live view (also the enrol page's small view): periodic JPEG + the faces' readings ---
function startFrames(withOverlay) {
  const img = document.getElementById("frame");
  let busy = false;
  async function tick() {
    if (busy) return;
    busy = true;
    try {
      const res = await fetch("/console/api/frame.jpg", { credentials: "same-origin", cache: "no-store" });
      if (res.status === 401) { window.location.assign("/console/login"); return; }
      if (res.ok) {
        const url = URL.createObjectURL(await res.blob());
        const old = img.src; img.src = url; img.dataset.version = res.headers.get("X-Frame-Version") || "";
        if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
      }
      if (withOverlay) showOverlay(await getJSON("/console/api/live"));
    } catch (e) { /* the next tick tries again */ } finally { busy = false; }
  }
  tick();
  setInterval(tick, 250);
}
function showOverlay(o) {
  document.getElementById("loop-fps").textContent = fmt(o.fps, 1);
  document.getElementById("latency").textContent = o.latency_ms == null ? "–" : `${fmt(o.latency_ms, 0)} ms`;
  document.getElementById("frame-no").textContent = o.frame == null ? "–" : o.frame;
  const body = document.querySelector("#faces tbody");
  body.replaceChildren(...(o.faces || []).map((f) => {
    const tr = el("tr"); tr.className = "face";
    tr.append(el("td", `#${f.track_id}`), el("td", f.status, `decision ${f.status}`));
    const q = f.quality;
    tr.append(el("td", q == null ? "–" : q.ok === false ? `refused: ${(q.failures || []).join(", ")}` : "ok"));
    const l = f.liveness;
    tr.append(el("td", l == null ? "off" : `${l.live == null ? "–" : fmt(l.live, 2)} (${l.frames} frames)`));
    return tr;
  }));
}

// --- enrol ---
async function showStaged(n) {
  const box = document.getElementById("staged");
  const imgs = [];
  for (let i = 0; i < n; i++) {
    const res = await fetch(`/console/api/capture/${i}.jpg`, { credentials: "same-origin" });
    if (res.ok) { const img = el("img"); img.alt = `capture ${i + 1}`; img.src = URL.createObjectURL(await res.blob()); imgs.push(img); }
  }
  box.replaceChildren(...imgs);
}
function enrolPage() {
  startFrames(false);
  let staged = 0;
  document.getElementById("capture").addEventListener("click", async () => {
    say("checking the face…");
    const r = await post("/console/api/capture");
    if (r.ok) { staged = r.data.staged; say(`captured (${staged} waiting); capture more or enrol`, "ok"); showStaged(staged); }
    else say(r.data.error || `refused (${r.status})`, "error");
  });
  document.getElementById("clear").addEventListener("click", async () => {
    const r = await post("/console/api/capture/clear");
    if (r.ok) { staged = 0; showStaged(0); say("captures cleared"); }
  });
  document.getElementById("enrol-live").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    say("enrolling…");
    const r = await post("/console/api/enrol", { name: document.getElementById("live-name").value });
    if (r.ok) { say(`enrolled ${r.data.name}: ${r.data.photos} photo(s)`, "ok"); showStaged(0); }
    else say(r.data.error || `refused (${r.status})`, "error");
  });
  document.getElementById("enrol-upload").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const form = new FormData();
    form.append("name", document.getElementById("upload-name").value);
    for (const f of document.getElementById("upload-photos").files) form.append("photos", f, f.name);
    say("enrolling…");
    const r = await post("/console/api/enrol", form);
    if (r.ok) say(`enrolled ${r.data.name}: ${r.data.photos} photo(s)`, "ok");
    else say(r.data.error || `refused (${r.status})`, "error");
  });
}

// --- people ---
async function peoplePage() {
  const data = await getJSON("/console/api/people");
  const people = data.people || [];
  document.getElementById("vault-state").textContent =
    `${people.length} people, ${people.reduce((s, p) => s + p.photos, 0)} photos` + (data.vault ? ` · vault ${data.vault}` : "");
  document.getElementById("problems").replaceChildren(...(data.problems || []).map((p) => el("li", p)));
  const body = document.querySelector("#people tbody");
  body.replaceChildren(...people.map((p) => {
    const tr = el("tr"); tr.dataset.name = p.name;
    const button = el("button", "Revoke", "danger revoke");
    button.type = "button";
    button.addEventListener("click", () => confirmRevoke(p.name));
    const templates = p.templates == null ? "–" : `${p.templates}/${p.photos}${p.templates === p.photos ? "" : " (rebuild)"}`;
    tr.append(el("td", p.name, "name"), el("td", p.photos), el("td", p.enrolled), el("td", p.updated), el("td", templates));
    const td = el("td"); td.append(button); tr.append(td);
    return tr;
  }));
}
function confirmRevoke(name) {
  const dialog = document.getElementById("confirm");
  document.getElementById("confirm-name").textContent = name;
  const input = document.getElementById("confirm-input");
  input.value = "";
  dialog.showModal();
  document.getElementById("confirm-no").onclick = () => dialog.close();
  document.getElementById("confirm-form").onsubmit = async (ev) => {
    ev.preventDefault();
    dialog.close();
    const r = await post("/console/api/revoke", { name, confirm: input.value });
    if (r.ok) say(`revoked ${r.data.name}: ${r.data.files} file(s) overwritten and removed`, "ok");
    else say(r.data.error || `refused (${r.status})`, "error");
    peoplePage();
  };
}

// --- verdicts: the recent trail, then live over server-sent events ---
function verdictsPage() {
  const body = document.querySelector("#verdicts tbody");
  const boxes = [...document.querySelectorAll("#filters input")];
  let source = null;
  let keepCrops = false;
  function row(r) {
    const tr = el("tr"); tr.className = `verdict ${r.kind}`; tr.dataset.kind = r.kind;
    const when = (r.timestamps && r.timestamps.decided) || r.ts || "";
    tr.append(el("td", r.seq == null ? "" : r.seq), el("td", when.replace("T", " ").replace("Z", "")),
      el("td", r.kind, `decision ${r.kind}`), el("td", r.name || (r.kind === "tailgate" ? r.granted_name || "" : "")),
      el("td", r.score == null ? "" : fmt(r.score, 3)), el("td", r.track_id == null ? "" : `#${r.track_id}`));
    const td = el("td");
    if (r.crop && keepCrops) {
      const b = el("button", "Enrol this face", "secondary"); b.type = "button";
      b.addEventListener("click", async () => {
        const name = window.prompt("Name of this person");
        if (!name) return;
        const res = await post("/console/api/enrol/verdict", { seq: r.seq, name });
        say(res.ok ? `enrolled ${res.data.name}` : res.data.error, res.ok ? "ok" : "error");
      });
      td.append(b);
    }
    tr.append(td);
    return tr;
  }
  async function load() {
    const kinds = boxes.filter((b) => b.checked).map((b) => b.value).join(",");
    const data = await getJSON(`/console/api/verdicts?kind=${encodeURIComponent(kinds || "none")}`);
    keepCrops = data.keep_unknown_crops;
    document.getElementById("crops-note").textContent = keepCrops
      ? "Faces of unknown and denied visitors are kept in memory: such a verdict can become an enrolment."
      : "Faces of unknown visitors are not kept ([console] keep_unknown_crops = false): an unknown visit cannot become an enrolment here.";
    const records = data.records || [];
    body.replaceChildren(...records.reverse().map(row));
    const last = records.length ? Math.max(...records.map((r) => r.id)) : 0;
    if (source) source.close();
    source = new EventSource(`/console/api/verdicts/stream?kind=${encodeURIComponent(kinds || "none")}&after=${last}`);
    source.onmessage = (ev) => { body.prepend(row(JSON.parse(ev.data))); };
    source.addEventListener("logout", () => window.location.assign("/console/login"));
  }
  boxes.forEach((b) => b.addEventListener("change", load));
  load();
}

// --- status ---
function dl(id, pairs) {
  const box = document.getElementById(id);
  box.replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", k), el("dd", v)]));
}
async function statusPage(recheck) {
  const s = await getJSON(`/console/api/status${recheck ? "?checks=1" : ""}`);
  document.querySelector("#checks tbody").replaceChildren(...s.checks.map((c) => {
    const tr = el("tr");
    tr.append(el("td", c.status, c.status), el("td", c.name), el("td", c.detail + (c.fix ? ` — fix: ${c.fix}` : "")));
    return tr;
  }));
  const snap = s.snapshot;
  dl("loop", [["source", snap.source], ["fps", snap.fps], ["frames", snap.frames], ["enrolled", snap.enrolled],
    ["verdicts", Object.entries(snap.verdicts).map(([k, v]) => `${k} ${v}`).join(", ")],
    ["latency p50 / p99", s.latency_ms.n ? `${fmt(s.latency_ms.p50, 1)} / ${fmt(s.latency_ms.p99, 1)} ms` : "–"],
    ["uptime", `${snap.uptime_s} s`]]);
  dl("mqtt", Object.entries(s.mqtt).map(([k, v]) => [k, typeof v === "object" ? JSON.stringify(v) : v]));
  dl("versions", Object.entries(s.versions).map(([k, v]) => [k, v]));
  dl("disk", s.disk.map((d) => [d.key, d.error ? d.error : `${d.free_mib} MiB free of ${d.total_mib} MiB (${d.path})`]));
}

async function main() {
  const current = document.getElementById(`nav-${page}`);
  if (current) current.classList.add("current");
  document.getElementById("logout").addEventListener("click", async () => {
    await post("/console/api/logout");
    window.location.assign("/console/login");
  });
  const session = await getJSON("/console/api/session");
  csrf = session.csrf;
  if (page === "live") startFrames(true);
  else if (page === "enrol") enrolPage();
  else if (page === "people") peoplePage();
  else if (page === "verdicts") verdictsPage();
  else if (page === "status") {
    statusPage(false);
    document.getElementById("recheck").addEventListener("click", () => statusPage(true));
  }
}
main();
