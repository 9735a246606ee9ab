// routilux-replay: the time-travel debugger page. Plain modern JavaScript, no build step.
//
// The page never folds events: states come from Python as a keyframe plus one generic
// patch per event (replay_tools/ui/windows.py). It talks to a "source": the local server
// (routilux-replay ui) or the data embedded in a self-contained file (routilux-replay html).
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const ROW_H = 22;
  const MAX_SCROLL_PX = 8_000_000; // browsers cap element heights; taller lists are scaled
  const BLOCK = 200; // rows fetched per request
  const COUNT_TITLES = {
    execution_history: "History", errors: "Errors", output_log: "Outputs", shared_log: "Shared log",
    pause_points: "Pause points",
  };
  const COUNT_KINDS = {
    execution_history: ["execution_recorded"], errors: ["execution_recorded"], output_log: ["output_sent"],
    shared_log: ["shared_log_appended"], pause_points: ["pause_point_added", "paused"],
  };
  const HIDDEN_KEYS = new Set(["_type"]);

  // ---------------------------------------------------------------------------------------
  // Generic helpers
  // ---------------------------------------------------------------------------------------
  const clone = (v) => (v === null || typeof v !== "object" ? v : structuredClone(v));
  const pathKey = (path) => path.join("\u0000");
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const unescapeKey = (k) => (k.startsWith("$$") ? k.slice(1) : k);

  // A path as replay_tools.paths.FieldPath prints it (bare words, or quoted segments).
  function fieldPath(path) {
    return path.map((raw) => {
      const seg = unescapeKey(String(raw));
      if (seg && /^[A-Za-z0-9_\-:]+$/.test(seg)) return seg;
      return '"' + seg.replace(/\\/g, "\\\\").replace(/"/g, '\\"') + '"';
    }).join(".");
  }

  // A tagged display value ({"$bytes": ...}) as short text.
  function tagText(v) {
    const keys = Object.keys(v);
    if (keys.length === 1 && ["$bytes", "$datetime", "$float", "$int", "$repr"].includes(keys[0])) {
      const k = keys[0];
      if (k === "$bytes") return `bytes(${v[k]})`;
      return String(v[k]);
    }
    return null;
  }

  function short(v, limit = 140) {
    let text;
    if (v === undefined) text = "(absent)";
    else if (typeof v === "string") text = JSON.stringify(v);
    else {
      const tag = v && typeof v === "object" && !Array.isArray(v) ? tagText(v) : null;
      text = tag !== null ? tag : JSON.stringify(v);
    }
    return text.length > limit ? text.slice(0, limit - 1) + "…" : text;
  }

  function deepEqual(a, b) {
    if (a === b) return true;
    if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
    if (Array.isArray(a) !== Array.isArray(b)) return false;
    const ka = Object.keys(a), kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]));
  }

  function resolvePath(obj, path) {
    let cur = obj;
    for (const seg of path) {
      if (cur === null || typeof cur !== "object") return undefined;
      if (Array.isArray(cur)) {
        const i = Number(seg);
        if (!Number.isInteger(i) || i < 0 || i >= cur.length) return undefined;
        cur = cur[i];
      } else {
        if (!Object.prototype.hasOwnProperty.call(cur, seg)) return undefined;
        cur = cur[seg];
      }
    }
    return cur;
  }

  // Apply one generic patch: [path, value] sets, [path] deletes. Arrays grow by setting
  // the position just past their end; deletions inside arrays come last-first.
  function applyPatch(state, ops) {
    for (const op of ops) {
      const path = op[0];
      let parent = state;
      for (let i = 0; i < path.length - 1; i++) {
        const seg = Array.isArray(parent) ? Number(path[i]) : path[i];
        if (parent[seg] === undefined || parent[seg] === null || typeof parent[seg] !== "object") parent[seg] = {};
        parent = parent[seg];
      }
      const last = path[path.length - 1];
      if (op.length === 1) {
        if (Array.isArray(parent)) parent.splice(Number(last), 1);
        else delete parent[last];
      } else if (Array.isArray(parent)) {
        const i = Number(last);
        if (i === parent.length) parent.push(clone(op[1]));
        else parent[i] = clone(op[1]);
      } else {
        parent[last] = clone(op[1]);
      }
    }
  }

  // Times come from Python as UTC with microseconds and a Z (replay_tools.timefmt, as the
  // CLI shows them); "local" shows the same instant in this browser's zone with its offset.
  let timeZone = "utc";
  function showTime(iso) {
    if (!iso || timeZone !== "local") return iso || "";
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(iso);
    if (!m) return iso;
    const utcMs = Date.parse(`${m[1]}Z`);
    const offsetMin = -new Date(utcMs).getTimezoneOffset();
    const wall = new Date(utcMs + offsetMin * 60000).toISOString().slice(0, 19);
    const sign = offsetMin < 0 ? "-" : "+";
    const abs = Math.abs(offsetMin);
    const zone = `${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
    return `${wall}${m[2] || ""}${zone}`;
  }
  // The time of day of a shown time (the event list's column): "07:13:04.123456Z".
  const timeOfDay = (iso) => showTime(iso).slice(11);
  // A time on the timeline: ms after the first event -> an absolute time, to the ms.
  function timeAtMs(ms) {
    const first = ui.meta && ui.meta.first_time;
    if (!first) return "";
    const m = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z$/.exec(first);
    if (!m) return "";
    const micros = Date.parse(`${m[1]}Z`) * 1000 + Math.round(Number(`0${m[2] || ".0"}`) * 1e6) + Math.round(ms * 1000);
    const whole = Math.floor(micros / 1e6) * 1000;
    const frac = String(micros - whole * 1000).padStart(6, "0");
    return showTime(`${new Date(whole).toISOString().slice(0, 19)}.${frac}Z`);
  }
  // The text filter's case rule (replay_tools.ui.textsearch.fold): only A-Z are lowered.
  const fold = (text) => text.replace(/[A-Z]/g, (c) => c.toLowerCase());
  // Control characters never reach a filter (so a match never spans two atoms of a saved page).
  const cleanText = (text) => text.replace(/[\u0000-\u001f\u007f]/g, "").trim();

  function fmtMs(ms) {
    if (ms < 0) return "–";
    if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
    if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(ms < 10000 ? 3 : 2)} s`;
    const m = Math.floor(ms / 60000);
    return `${m} min ${((ms - m * 60000) / 1000).toFixed(1)} s`;
  }

  function b64ToBuffer(b64) {
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  // The task table packed by replay_tools.ui.explorer.pack_tasks.
  function unpackTasks(buffer) {
    const view = new DataView(buffer);
    const n = view.getUint32(0, true);
    let off = 8;
    const f64 = () => { const a = new Float64Array(buffer.slice(off, off + 8 * n)); off += 8 * n; return a; };
    const i32 = () => { const a = new Int32Array(buffer.slice(off, off + 4 * n)); off += 4 * n; return a; };
    const queued = f64(), started = f64(), ended = f64();
    const row = i32(), lane = i32(), qseq = i32(), eseq = i32();
    const state = new Uint8Array(buffer.slice(off, off + n));
    return { n, queued, started, ended, row, lane, qseq, eseq, state };
  }

  // ---------------------------------------------------------------------------------------
  // Sources: the server, or data embedded in the file
  // ---------------------------------------------------------------------------------------
  // A server started on a job store serves many jobs: the page names its job with ?job=.
  const JOB = new URLSearchParams(location.search).get("job");
  const jobQuery = JOB ? `&job=${encodeURIComponent(JOB)}` : "";

  class ServerSource {
    constructor() { this.mode = "server"; }
    async get(name, params = {}) {
      const qs = new URLSearchParams();
      if (JOB) qs.set("job", JOB);
      for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") qs.set(k, v);
      const resp = await fetch(`/api/${name}?${qs}`, { cache: "no-store" });
      const body = await resp.json().catch(() => ({ error: `HTTP ${resp.status}` }));
      if (!resp.ok) throw new Error(body.error || `HTTP ${resp.status}`);
      return body;
    }
    meta() { return this.get("meta"); }
    rows(p) { return this.get("rows", p); }
    position(p) { return this.get("position", p); }
    window(v) { return this.get("window", { v }); }
    event(v) { return this.get("event", { v }); }
    diff(a, b) { return this.get("diff", { a, b }); }
    blame(path, after) { return this.get("blame", { path, after }); }
    bisect(where) { return this.get("bisect", { where }); }
    verify(again) { return this.get("verify", again ? { again: 1 } : {}); }
    timeline(since) { return this.get("timeline", { since }); }
    async tasks(since) {
      const resp = await fetch(`/api/tasks?since=${since}${jobQuery}`, { cache: "no-store" });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      return unpackTasks(await resp.arrayBuffer());
    }
    versionAt(ms) { return this.get("version_at", { ms }); }
    failure() { return this.get("failure"); }
  }

  // Everything answered from the embedded data (routilux-replay html). Diff and blame are
  // computed from the embedded per-event patches; bisect needs the server.
  class EmbeddedSource {
    constructor(data) {
      this.mode = "file";
      this.d = data;
      this.lo = data.meta.range[0];
      this.hi = data.meta.range[1];
      this.events = data.events; // [seq, ms, time, kind, routine, summary, data]
    }
    async meta() { return this.d.meta; }
    filtered(p) {
      const kinds = p.kinds ? new Set(p.kinds.split(",")) : null;
      const text = fold(cleanText(p.text || ""));
      if (!kinds && !p.routine && !text) return this.events;
      const key = `${p.kinds}|${p.routine}|${text}`;
      if (this._fkey === key) return this._frows;
      // r[7]: the kind and the payload's atoms, folded and NUL-separated by Python (export.search_text)
      const out = this.events.filter((r) => (!kinds || kinds.has(r[3])) && (!p.routine || r[4] === p.routine)
        && (!text || r[7].includes(text)));
      this._fkey = key; this._frows = out;
      return out;
    }
    async rows(p) {
      const list = this.filtered(p);
      const from = Number(p.from || 0), count = Number(p.count || BLOCK);
      return { total: list.length, from, rows: list.slice(from, from + count).map((r) => r.slice(0, 6)), complete: true,
        upto: this.hi, routines_after: null };
    }
    async position(p) {
      const list = this.filtered(p);
      let lo = 0, hi = list.length;
      while (lo < hi) { const mid = (lo + hi) >> 1; if (list[mid][0] < p.v) lo = mid + 1; else hi = mid; }
      return { position: lo };
    }
    async window(v) {
      const bases = this.d.window_bases;
      let lo = 0, hi = bases.length - 1;
      while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (bases[mid] <= v) lo = mid; else hi = mid - 1; }
      return this.d.windows[lo];
    }
    async event(v) {
      const r = this.events[v - this.lo];
      return { seq: r[0], time: r[2], kind: r[3], routine: r[4], data: r[6] };
    }
    async stateAt(v) {
      const win = await this.window(v);
      const s = clone(win.state);
      for (let i = 1; i <= v - win.base; i++) applyPatch(s, win.patches[i]);
      return { state: s, win };
    }
    async diff(a, b) {
      const [lo, hi] = a <= b ? [a, b] : [b, a];
      const touched = new Map();
      for (let v = lo + 1; v <= hi; v++) {
        const win = await this.window(v);
        for (const op of win.patches[v - win.base]) touched.set(pathKey(op[0]), op[0]);
      }
      const sa = (await this.stateAt(a)).state, sb = (await this.stateAt(b)).state;
      const keys = [...touched.values()].sort((x, y) => x.length - y.length);
      const seen = new Set();
      const groups = new Map();
      for (const path of keys) {
        let covered = false;
        for (let i = 1; i < path.length; i++) if (seen.has(pathKey(path.slice(0, i)))) { covered = true; break; }
        const va = resolvePath(sa, path), vb = resolvePath(sb, path);
        if (covered || deepEqual(va, vb)) continue;
        seen.add(pathKey(path));
        const group = path.length === 1 ? "status" : path[0];
        const change = va === undefined ? "added" : vb === undefined ? "removed" : "changed";
        if (!groups.has(group)) groups.set(group, []);
        groups.get(group).push({ path: fieldPath(path), change, old: va === undefined ? null : va, new: vb === undefined ? null : vb });
      }
      const order = this.d.meta.groups;
      const out = [...groups.entries()].sort((x, y) => order.indexOf(x[0]) - order.indexOf(y[0])).map(([group, items]) => ({
        group, title: this.d.meta.group_titles[group] || group, total: items.length, items,
      }));
      const ca = this.countsAt(await this.window(a), a), cb = this.countsAt(await this.window(b), b);
      const counts = {};
      if (ca && cb) this.d.meta.counted.forEach((n, i) => { if (ca[i] !== cb[i]) counts[n] = [ca[i], cb[i]]; });
      return { a, b, groups: out, history: "counts", counts, computed: "from the file's per-event changes" };
    }
    countsAt(win, v) { return win.counts ? win.counts[v - win.base] : null; }
    async blame(path) {
      const parts = parseFieldPath(path);
      const related = (p) => {
        const n = Math.min(p.length, parts.length);
        for (let i = 0; i < n; i++) if (String(p[i]) !== parts[i]) return false;
        return true;
      };
      const changes = [];
      let win = await this.window(this.lo);
      const s = clone(win.state);
      let prev = clone(resolvePath(s, parts));
      for (let v = this.lo + 1; v <= this.hi; v++) {
        if (v > win.last) { win = await this.window(v); }
        const ops = win.patches[v - win.base];
        if (v === win.base) { Object.keys(s).forEach((k) => delete s[k]); Object.assign(s, clone(win.state)); }
        else applyPatch(s, ops);
        if (!ops.some((op) => related(op[0]))) continue;
        const cur = resolvePath(s, parts);
        if (deepEqual(prev, cur)) continue;
        const r = this.events[v - this.lo];
        changes.push({ version: v, time: r[2], kind: r[3], routine: r[4], old: prev === undefined ? null : prev,
          new: cur === undefined ? null : cur, old_exists: prev !== undefined, new_exists: cur !== undefined });
        prev = clone(cur);
      }
      return { field: path, path: parts, changes, more: false, scanned_to: this.hi,
        note: this.lo > 1 ? `changes before version ${this.lo} are not in this file` : null };
    }
    // Conditions are evaluated in Python only: the file holds the answers of the conditions
    // named with `routilux-replay html --bisect` when it was written, and nothing else.
    async bisect(where) {
      const answers = this.d.bisect || {};
      const found = answers[where.split(/\s+/).filter(Boolean).join(" ")];
      if (found) return found;
      const known = Object.keys(answers);
      const quoted = `'${where.replace(/'/g, "'\\''")}'`;
      throw new Error(`This file holds bisect answers only for the conditions it was written with`
        + (known.length ? ` (${known.join("; ")})` : " (none)") + `. Run \`routilux-replay bisect JOB --where ${quoted} --all\``
        + ` or open the job with \`routilux-replay ui JOB\`; to put this answer in the file, write it again with`
        + ` \`routilux-replay html JOB -o FILE --bisect ${quoted}\`.`);
    }
    async verify() { return this.d.verify; }
    async timeline() { return this.d.timeline; }
    async tasks() { return unpackTasks(b64ToBuffer(this.d.tasks)); }
    async versionAt(ms) {
      const ev = this.events;
      let lo = 0, hi = ev.length - 1;
      while (lo < hi) { const mid = (lo + hi + 1) >> 1; if (ev[mid][1] <= ms) lo = mid; else hi = mid - 1; }
      return { version: ev[lo][0] };
    }
    async failure() { return { version: this.d.meta.first_failure, scanned: true }; }
  }

  // replay_tools.paths.parse_path, for blame in a file (the server parses it itself).
  function parseFieldPath(text) {
    const out = [];
    let i = 0;
    while (i < text.length) {
      if (text[i] === '"' || text[i] === "'") {
        const q = text[i++];
        let buf = "";
        while (i < text.length && text[i] !== q) { if (text[i] === "\\") i++; buf += text[i++]; }
        i++;
        out.push(buf);
      } else {
        let j = text.indexOf(".", i);
        if (j < 0) j = text.length;
        out.push(text.slice(i, j));
        i = j;
      }
      if (text[i] === ".") i++;
    }
    return out.map((s) => (s.startsWith("$") ? "$" + s : s));
  }

  // ---------------------------------------------------------------------------------------
  // Page state
  // ---------------------------------------------------------------------------------------
  const embeddedEl = document.getElementById("embedded-data");
  const source = embeddedEl ? new EmbeddedSource(JSON.parse(embeddedEl.textContent)) : new ServerSource();
  const ui = {
    meta: null, head: 1, lo: 1, cursor: 1, a: null, b: null,
    filter: { kinds: [], routine: "", text: "" },
    follow: false,
    win: null, state: null, changes: [], counts: null,
    openPaths: new Set(["routine_states", "shared_data"].map((k) => pathKey([k]))),
    ready: false, stateVersion: 0, lastRender: null, lastDiff: null, lastBlame: null, lastBisect: null, errors: [],
    timeline: null, tasks: null,
    perf: { firstRows: null, firstState: null, firstTimeline: null, fullTimeline: null },
    indexed: 0, attributed: 0, indexDone: false,
  };
  window.__replay = ui; // read by the browser tests and the benchmark

  function showError(where, err) {
    const msg = err && err.message ? err.message : String(err);
    ui.errors.push(`${where}: ${msg}`);
    openPanel("Error", (p) => { p.append(el("div", "err", `${where}: ${msg}`)); });
  }

  // ---------------------------------------------------------------------------------------
  // URL: the cursor, marks and filters, so a link opens at the same moment
  // ---------------------------------------------------------------------------------------
  function readHash() {
    const h = new URLSearchParams(location.hash.slice(1));
    const num = (k) => (h.has(k) && /^\d+$/.test(h.get(k)) ? Number(h.get(k)) : null);
    return { v: num("v"), a: num("a"), b: num("b"), kinds: h.get("kinds") || "", routine: h.get("routine") || "",
      text: h.get("text") || "", follow: h.get("follow") === "1", tz: h.get("tz") === "local" ? "local" : "utc" };
  }
  let hashTimer = 0;
  function writeHash() {
    clearTimeout(hashTimer);
    hashTimer = setTimeout(() => {
      const h = new URLSearchParams();
      h.set("v", ui.cursor);
      if (ui.a) h.set("a", ui.a);
      if (ui.b) h.set("b", ui.b);
      if (ui.filter.kinds.length) h.set("kinds", ui.filter.kinds.join(","));
      if (ui.filter.routine) h.set("routine", ui.filter.routine);
      if (ui.filter.text) h.set("text", ui.filter.text);
      if (ui.follow) h.set("follow", "1");
      if (timeZone === "local") h.set("tz", "local");
      history.replaceState(null, "", `${location.pathname}${location.search}#${h}`);
    }, 120);
  }

  // ---------------------------------------------------------------------------------------
  // Cursor and state pane
  // ---------------------------------------------------------------------------------------
  const windowCache = new Map();
  async function getWindow(v) {
    for (const w of windowCache.values()) if (w.base <= v && v <= w.last) return w;
    const w = await source.window(v);
    if (windowCache.size > 64) windowCache.delete(windowCache.keys().next().value);
    if (w.counts) windowCache.set(w.base, w); // windows still being counted are fetched again
    return w;
  }

  let cursorSeq = 0;
  async function setCursor(v, opts = {}) {
    v = Math.max(ui.lo, Math.min(ui.head, Math.round(v)));
    ui.cursor = v;
    $("slider").value = v;
    $("version-input").value = v;
    writeHash();
    const mySeq = ++cursorSeq;
    let win;
    try {
      win = await getWindow(v);
    } catch (err) {
      showError("state", err);
      return;
    }
    if (mySeq !== cursorSeq) return; // a later move superseded this one
    // Step from the state shown when it is in the same window and behind us; else rebuild.
    let state;
    if (ui.win === win && ui.state && ui.stateVersion <= v && ui.stateVersion >= win.base) {
      state = ui.state;
      for (let i = ui.stateVersion + 1; i <= v; i++) applyPatch(state, win.patches[i - win.base]);
    } else {
      state = clone(win.state);
      for (let i = win.base + 1; i <= v; i++) applyPatch(state, win.patches[i - win.base]);
    }
    ui.win = win; ui.state = state; ui.stateVersion = v;
    ui.changes = win.patches[v - win.base].map((op) => op[0]);
    ui.counts = win.counts ? win.counts[v - win.base] : null;
    const prevCounts = win.counts && v > win.base ? win.counts[v - win.base - 1] : null;
    renderCursorInfo(win, v);
    renderCounts(ui.counts, prevCounts, v);
    renderState(state, ui.changes);
    ui.lastRender = { version: v, at: performance.now() };
    if (ui.perf.firstState === null) ui.perf.firstState = ui.lastRender.at;
    if (!opts.fromList) revealInList(v);
    else renderRows();
    drawTimeline();
    document.body.dataset.cursor = String(v);
  }

  function renderCursorInfo(win, v) {
    const info = $("cursor-info");
    info.textContent = "";
    const i = v - win.base;
    const when = win.times ? showTime(win.times[i]) : "";
    info.append(el("span", "", `${when}  `));
    const kindSpan = el("span", "kind", "");
    info.append(kindSpan);
    $("state-title").textContent = `at version ${v} of ${ui.head}${when ? ` · ${when}` : ""}`;
    source.event(v).then((ev) => {
      if (ui.cursor !== v) return;
      kindSpan.textContent = `${ev.kind}${ev.routine ? " · " + ev.routine : ""}`;
    }).catch(() => {});
  }

  function renderCounts(counts, prev, v) {
    const box = $("counts");
    box.textContent = "";
    for (const [i, name] of ui.meta.counted.entries()) {
      const c = el("span", `count ${name}`);
      c.dataset.name = name;
      c.append(`${COUNT_TITLES[name] || name}: `, el("b", "", counts ? String(counts[i]) : "…"));
      if (counts && prev && counts[i] !== prev[i]) c.classList.add("changed");
      c.title = `show the ${COUNT_KINDS[name].join(", ")} events up to version ${v}`;
      c.addEventListener("click", () => setFilter({ kinds: COUNT_KINDS[name], routine: "", text: name === "errors" ? "\"error\"" : "" }));
      box.append(c);
    }
    if (!counts) box.append(el("span", "muted", "counting… (the index is still reading the log)"));
  }

  function renderState(state, changes) {
    const box = $("state");
    const scroll = box.scrollTop;
    box.textContent = "";
    const changed = new Set(changes.map(pathKey));
    const inside = new Set();
    for (const p of changes) for (let i = 1; i < p.length; i++) inside.add(pathKey(p.slice(0, i)));
    for (const key of Object.keys(state)) {
      if (HIDDEN_KEYS.has(key)) continue;
      box.append(node(key, state[key], [key], changed, inside));
    }
    box.scrollTop = scroll;
  }

  function valueSpan(v) {
    if (v === null) return el("span", "v-null", "null");
    if (typeof v === "string") return el("span", "v-str", JSON.stringify(v));
    if (typeof v === "number") return el("span", "v-num", String(v));
    if (typeof v === "boolean") return el("span", "v-bool", String(v));
    const tag = tagText(v);
    if (tag !== null) return el("span", "v-tag", tag);
    return el("span", "", JSON.stringify(v));
  }

  function keySpan(key, path) {
    const k = el("span", "key", unescapeKey(String(key)));
    k.title = `blame ${fieldPath(path)}: every event that changed it`;
    k.dataset.path = fieldPath(path);
    k.addEventListener("click", (e) => { e.preventDefault(); e.stopPropagation(); runBlame(fieldPath(path)); });
    return k;
  }

  function node(key, value, path, changed, inside) {
    const pk = pathKey(path);
    const isObj = value !== null && typeof value === "object" && tagText(value) === null;
    if (!isObj) {
      const leaf = el("div", "leaf");
      leaf.dataset.path = fieldPath(path);
      if (changed.has(pk)) leaf.classList.add("changed");
      leaf.append(keySpan(key, path), ": ", valueSpan(value));
      return leaf;
    }
    const isArr = Array.isArray(value);
    const n = isArr ? value.length : Object.keys(value).length;
    const det = el("details");
    det.dataset.path = fieldPath(path);
    if (changed.has(pk)) det.classList.add("changed");
    if (inside.has(pk)) det.classList.add("inside");
    const sum = el("summary");
    sum.append(keySpan(key, path), el("span", "meta", isArr ? ` [${n}]` : ` {${n}}`));
    if (!ui.openPaths.has(pk) && n) sum.append(" ", el("span", "meta", short(value, 80)));
    det.append(sum);
    const fill = () => {
      if (det.dataset.filled) return;
      det.dataset.filled = "1";
      const keys = isArr ? value.map((_, i) => i) : Object.keys(value);
      const limit = 500;
      for (const k of keys.slice(0, limit)) det.append(node(k, value[k], [...path, String(k)], changed, inside));
      if (keys.length > limit) det.append(el("div", "leaf meta", `… ${keys.length - limit} more`));
    };
    if (ui.openPaths.has(pk)) { det.open = true; fill(); }
    det.addEventListener("toggle", () => {
      if (det.open) { ui.openPaths.add(pk); fill(); } else ui.openPaths.delete(pk);
    });
    return det;
  }

  // ---------------------------------------------------------------------------------------
  // Event list (virtualised: only the visible rows exist; pages of rows are fetched)
  // ---------------------------------------------------------------------------------------
  // blocks: position / BLOCK -> {rows, after}: rows past version `after` have no routine known yet.
  const list = { total: 0, blocks: new Map(), loading: new Set(), gen: 0, pool: [], first: 0, complete: true, upto: 0 };

  function filterParams() {
    return { kinds: ui.filter.kinds.join(","), routine: ui.filter.routine, text: ui.filter.text };
  }

  function resetList() {
    list.gen++;
    list.blocks.clear();
    list.shadow = null;
    list.loading.clear();
    list.total = 0;
    loadBlock(0).then(() => revealInList(ui.cursor));
  }

  // Ask again for the rows on screen, showing the old ones until the new ones arrive.
  let refreshTimer = 0;
  function refreshList() {
    if (refreshTimer) return;
    refreshTimer = setTimeout(() => {
      refreshTimer = 0;
      list.shadow = list.blocks;
      list.blocks = new Map();
      list.loading.clear();
      list.gen++;
      loadBlock(Math.floor(list.first / BLOCK)).then(() => { list.shadow = null; renderRows(); });
    }, 250);
  }

  async function loadBlock(b) {
    if (list.blocks.has(b) || list.loading.has(b)) return;
    const gen = list.gen;
    list.loading.add(b);
    try {
      const resp = await source.rows({ ...filterParams(), from: b * BLOCK, count: BLOCK });
      if (gen !== list.gen) return;
      list.total = resp.total;
      list.complete = resp.complete;
      list.upto = resp.upto;
      list.blocks.set(b, { rows: resp.rows, after: resp.routines_after });
      if (list.blocks.size > 400) list.blocks.delete(list.blocks.keys().next().value);
      if (ui.perf.firstRows === null) ui.perf.firstRows = performance.now();
      updateListSize();
      renderRows();
    } catch (err) {
      if (gen === list.gen) showError("events", err);
    } finally {
      list.loading.delete(b);
    }
  }

  function updateListSize() {
    const full = list.total * ROW_H;
    $("events-spacer").style.height = `${Math.min(full, MAX_SCROLL_PX)}px`;
    const filtered = ui.filter.kinds.length || ui.filter.routine || ui.filter.text;
    let text = `${list.total.toLocaleString()} ${filtered ? "matching " : ""}event${list.total === 1 ? "" : "s"}`;
    if (filtered && !list.complete) {
      text += ui.filter.routine && list.upto < ui.head
        ? ` so far (routines known up to version ${list.upto.toLocaleString()})`
        : ` so far (up to version ${list.upto.toLocaleString()})`;
    }
    $("events-count").textContent = text;
  }

  // The scroll position <-> first row mapping, scaled when the list is taller than browsers allow.
  function scrollGeometry() {
    const box = $("events");
    const view = box.clientHeight;
    const full = list.total * ROW_H;
    const spacer = Math.min(full, MAX_SCROLL_PX);
    const ratio = spacer > view ? Math.max(0, full - view) / (spacer - view) : 1;
    return { box, view, full, spacer, ratio };
  }

  // Rows are recycled by position (row p uses pool[p % pool size]), so scrolling by a few
  // rows rewrites only the rows that came into view; the others just move.
  function renderRows() {
    const g = scrollGeometry();
    const virtualTop = g.box.scrollTop * g.ratio;
    const first = Math.floor(virtualTop / ROW_H);
    const count = Math.ceil(g.view / ROW_H) + 2;
    const rowsEl = $("events-rows");
    rowsEl.style.transform = `translateY(${g.box.scrollTop - (virtualTop - first * ROW_H)}px)`;
    if (list.pool.length < count) {
      while (list.pool.length < count) {
        const r = el("div", "row");
        for (const c of ["c-seq", "c-time", "c-kind", "c-routine", "c-data"]) r.append(el("span", c));
        r.addEventListener("click", () => { if (r.dataset.seq) setCursor(Number(r.dataset.seq), { fromList: true }); });
        rowsEl.append(r);
        list.pool.push(r);
      }
      for (const r of list.pool) r.dataset.pos = "";
    }
    list.first = first;
    const n = list.pool.length;
    for (let i = 0; i < n; i++) {
      const pos = first + i;
      const r = list.pool[((pos % n) + n) % n];
      if (i >= count || pos >= list.total) { r.style.display = "none"; r.dataset.pos = ""; continue; }
      r.style.display = "";
      r.style.transform = `translateY(${i * ROW_H}px)`;
      const b = Math.floor(pos / BLOCK);
      const fresh = list.blocks.get(b);
      const block = fresh || (list.shadow && list.shadow.get(b));
      if (!fresh && block) loadBlock(b);
      const row = block ? block.rows[pos - b * BLOCK] : null;
      const key = `${list.gen}:${fresh ? 1 : 0}:${pos}:${row ? row[0] : "-"}:${timeZone}`;
      if (r.dataset.pos === key) {
        if (row) r.classList.toggle("cursor", row[0] === ui.cursor);
        continue;
      }
      r.dataset.pos = key;
      const cells = r.children;
      if (!row) {
        loadBlock(b);
        r.className = "row placeholder";
        r.dataset.seq = "";
        cells[0].textContent = "…"; cells[1].textContent = ""; cells[2].textContent = ""; cells[3].textContent = ""; cells[4].textContent = "";
        continue;
      }
      const [seq, , time, kind, routine, data] = row;
      const unknown = routine === null && block.after !== null && seq > block.after;
      r.dataset.seq = seq;
      r.className = "row" + (seq === ui.cursor ? " cursor" : "") + (kind === "task_failed" || (kind === "execution_recorded" && data.includes('"event_name": "error"')) ? " fail" : "");
      cells[0].textContent = seq;
      cells[1].textContent = timeOfDay(time);
      cells[1].title = showTime(time);
      cells[2].textContent = kind;
      cells[3].textContent = unknown ? "…" : routine || "";
      cells[3].title = unknown ? "the routines are still being attributed" : "";
      cells[4].textContent = data.length > 400 ? `${data.slice(0, 399)}…` : data;
    }
    // Prefetch the next and previous blocks so a steady scroll never waits.
    const b0 = Math.floor(first / BLOCK);
    if (b0 > 0) loadBlock(b0 - 1);
    if ((b0 + 1) * BLOCK < list.total) loadBlock(b0 + 1);
  }

  async function revealInList(v) {
    let pos;
    const flt = filterParams();
    if (!flt.kinds && !flt.routine && !flt.text) pos = v - ui.lo;
    else {
      try { pos = (await source.position({ ...flt, v })).position; } catch (err) { return; }
    }
    const g = scrollGeometry();
    const firstVisible = Math.floor(g.box.scrollTop * g.ratio / ROW_H);
    const visible = Math.floor(g.view / ROW_H);
    if (pos < firstVisible || pos >= firstVisible + visible - 1) {
      const target = Math.max(0, pos - Math.floor(visible / 3)) * ROW_H;
      g.box.scrollTop = g.ratio > 0 ? target / g.ratio : 0;
    }
    renderRows();
  }

  let scrollPending = false;
  $("events").addEventListener("scroll", () => {
    if (scrollPending) return;
    scrollPending = true;
    requestAnimationFrame(() => { scrollPending = false; renderRows(); });
  }, { passive: true });

  // Filters
  function setFilter(f) {
    ui.filter = { kinds: f.kinds || [], routine: f.routine || "", text: f.text || "" };
    $("text-filter").value = ui.filter.text;
    $("routine-filter").value = ui.filter.routine;
    for (const box of document.querySelectorAll("#kind-list input")) box.checked = ui.filter.kinds.includes(box.value);
    $("kind-summary").textContent = ui.filter.kinds.length ? ui.filter.kinds.join(", ") : "all kinds";
    writeHash();
    resetList();
  }

  function buildFilters() {
    const kl = $("kind-list");
    kl.textContent = "";
    for (const kind of ui.meta.kinds) {
      const lab = el("label");
      const box = el("input");
      box.type = "checkbox"; box.value = kind; box.checked = ui.filter.kinds.includes(kind);
      box.addEventListener("change", () => {
        const kinds = [...document.querySelectorAll("#kind-list input:checked")].map((b) => b.value);
        setFilter({ ...ui.filter, kinds });
      });
      lab.append(box, " ", kind);
      kl.append(lab);
    }
    const rs = $("routine-filter");
    const current = ui.filter.routine;
    rs.textContent = "";
    rs.append(new Option("all routines", ""));
    for (const r of ui.meta.routines) rs.append(new Option(r, r));
    rs.value = current;
  }
  let textTimer = 0;
  $("text-filter").addEventListener("input", () => {
    clearTimeout(textTimer);
    textTimer = setTimeout(() => setFilter({ ...ui.filter, text: cleanText($("text-filter").value) }), 300);
  });
  $("routine-filter").addEventListener("change", () => setFilter({ ...ui.filter, routine: $("routine-filter").value }));

  // ---------------------------------------------------------------------------------------
  // Panel: diff, blame, bisect, verify, event details
  // ---------------------------------------------------------------------------------------
  function openPanel(title, fill) {
    $("panel-box").hidden = false;
    $("panel-title").textContent = title;
    const p = $("panel");
    p.textContent = "";
    fill(p);
  }
  $("panel-close").addEventListener("click", () => { $("panel-box").hidden = true; });

  function jumpLink(v) {
    const a = el("span", "jump", String(v));
    a.title = `go to version ${v}`;
    a.addEventListener("click", () => setCursor(v));
    return a;
  }

  function markText() {
    $("marks").textContent = `A: ${ui.a ?? "–"}  B: ${ui.b ?? "–"}`;
  }

  async function runDiff() {
    if (ui.a === null || ui.b === null) {
      openPanel("Diff", (p) => p.append(el("div", "", "Mark two versions first: move the cursor and press a, then move it again and press b.")));
      return;
    }
    openPanel(`Diff ${ui.a} → ${ui.b}`, (p) => p.append(el("div", "muted", "computing…")));
    try {
      const d = await source.diff(ui.a, ui.b);
      ui.lastDiff = d;
      openPanel(`Diff version ${d.a} → ${d.b}`, (p) => {
        if (!d.groups.length && !(d.counts && Object.keys(d.counts).length)) p.append(el("div", "", "no differences"));
        for (const g of d.groups) {
          p.append(el("h3", "", `${g.title} (${g.total})`));
          const t = el("table");
          for (const it of g.items) {
            const tr = el("tr", "diff-item");
            const mark = { added: "+", removed: "-", changed: "~" }[it.change];
            tr.append(el("td", `d-${it.change}`, mark));
            const pathTd = el("td", "jump", it.path);
            pathTd.title = "blame this field";
            pathTd.addEventListener("click", () => runBlame(it.path));
            tr.append(pathTd);
            tr.append(el("td", "val", it.change === "changed" ? `${short(it.old)} → ${short(it.new)}`
              : short(it.change === "added" ? it.new : it.old)));
            t.append(tr);
          }
          p.append(t);
          if (g.total > g.items.length) p.append(el("div", "muted", `… and ${g.total - g.items.length} more`));
        }
        if (d.counts && Object.keys(d.counts).length) {
          p.append(el("h3", "", "History lists (entries)"));
          const t = el("table");
          for (const [name, [x, y]] of Object.entries(d.counts)) {
            const tr = el("tr");
            tr.append(el("td", "d-changed", "~"), el("td", "", COUNT_TITLES[name] || name), el("td", "val", `${x} → ${y} (${y - x >= 0 ? "+" : ""}${y - x})`));
            t.append(tr);
          }
          p.append(t);
        }
        if (d.history === "counts") p.append(el("div", "muted", d.computed ? `Computed ${d.computed}.` : "History lists are compared by their lengths on a job this long; `routilux-replay diff` lists every entry."));
      });
    } catch (err) { showError("diff", err); }
  }

  async function runBlame(path, after) {
    openPanel(`Blame ${path}`, (p) => p.append(el("div", "muted", "scanning the log…")));
    try {
      const r = await source.blame(path, after);
      if (after && ui.lastBlame && ui.lastBlame.field === r.field) r.changes = ui.lastBlame.changes.concat(r.changes);
      ui.lastBlame = r;
      openPanel(`Blame ${r.field}`, (p) => {
        p.append(el("div", "muted", `${r.changes.length} event${r.changes.length === 1 ? "" : "s"} changed ${r.field}${r.more ? " (so far)" : ""}. Click a version to go there.`));
        if (r.note) p.append(el("div", "muted", r.note));
        const t = el("table");
        const hd = el("tr");
        for (const h of ["version", "time", "kind", "routine", "old → new"]) hd.append(el("th", "", h));
        t.append(hd);
        for (const c of r.changes) {
          const tr = el("tr", "blame-item");
          tr.dataset.version = c.version;
          const td = el("td"); td.append(jumpLink(c.version));
          const at = el("td", "", timeOfDay(c.time));
          at.title = showTime(c.time);
          tr.append(td, at, el("td", "", c.kind), el("td", "", c.routine || "–"),
            el("td", "val", `${c.old_exists ? short(c.old, 60) : "(absent)"} → ${c.new_exists ? short(c.new, 60) : "(absent)"}`));
          t.append(tr);
        }
        p.append(t);
        if (r.more) {
          const more = el("button", "", "scan further");
          more.addEventListener("click", () => runBlame(path, r.scanned_to));
          p.append(more);
        }
      });
    } catch (err) { showError("blame", err); }
  }

  async function runBisect(where) {
    const input = $("bisect-input");
    input.classList.remove("bad");
    if (!where) { input.focus(); return; }
    openPanel("Bisect", (p) => p.append(el("div", "muted", `searching for the first version where ${where} holds…`)));
    try {
      const r = await source.bisect(where);
      ui.lastBisect = r;
      openPanel("Bisect", (p) => {
        if (r.version === null) {
          p.append(el("div", "", `${where} holds at no version (1–${r.upto.toLocaleString()}).`));
          return;
        }
        const line = el("div");
        line.append(`First version where ${where} holds: `, jumpLink(r.version), ` (${r.kind}, ${showTime(r.time)})`);
        p.append(line);
        if (source.mode === "file" && r.version < ui.lo) {
          p.append(el("div", "muted", `That version is before the ones this file holds (${ui.lo}–${ui.head}).`));
        }
        const flips = r.transitions;
        if (flips.length > 1) {
          p.append(el("h3", "", `Every change (${r.transitions_total.toLocaleString()})`));
          const t = el("table");
          for (const f of flips) {
            const tr = el("tr", "bisect-flip");
            const td = el("td"); td.append(jumpLink(f.version));
            const at = el("td", "", timeOfDay(f.time)); at.title = showTime(f.time);
            tr.append(td, el("td", f.holds ? "d-added" : "d-removed", f.holds ? "becomes true" : "becomes false"), at, el("td", "", f.kind));
            t.append(tr);
          }
          p.append(t);
          if (r.transitions_total > flips.length) p.append(el("div", "muted", `… and ${r.transitions_total - flips.length} more`));
        } else {
          p.append(el("div", "muted", "It holds from there to the last version."));
        }
      });
      await setCursor(r.version ?? ui.cursor);
    } catch (err) {
      input.classList.add("bad");
      ui.lastBisect = { error: err.message };
      openPanel("Bisect", (p) => p.append(el("div", "err", err.message)));
    }
  }
  $("bisect-form").addEventListener("submit", (e) => { e.preventDefault(); runBisect($("bisect-input").value.trim()); });

  // A saved page answers only the conditions it was written with (`html --bisect`): they
  // are offered in the box; with none, the box is disabled and says how to get answers.
  function setUpFileBisect() {
    $("follow-check").disabled = true;
    const known = Object.keys(source.d.bisect || {});
    const input = $("bisect-input");
    if (!known.length) {
      input.placeholder = "bisect: not in this file (conditions run in Python; see the tooltip)";
      input.title = "A saved page holds no code that evaluates conditions. Run `routilux-replay bisect JOB --where COND --all`, "
        + "open the job with `routilux-replay ui JOB`, or write the page with `routilux-replay html JOB -o FILE --bisect COND` "
        + "to keep answers in it.";
      input.disabled = true; $("bisect-btn").disabled = true;
      $("bisect-form").title = input.title;
      return;
    }
    const list = el("datalist");
    list.id = "bisect-known";
    for (const cond of known) { const o = el("option"); o.value = cond; list.append(o); }
    document.body.append(list);
    input.setAttribute("list", "bisect-known");
    input.placeholder = `bisect (this file answers: ${known.join("; ")})`;
    input.title = "This saved page holds the answers of the conditions it was written with (routilux-replay html --bisect).";
  }

  // Times in UTC (as the CLI shows them) or in this browser's zone with its offset.
  function setTimeZone(zone) {
    timeZone = zone === "local" ? "local" : "utc";
    const btn = $("tz-btn");
    btn.textContent = timeZone === "local" ? "local time" : "UTC";
    btn.title = timeZone === "local" ? "times in this browser's zone, with the offset (click for UTC)"
      : "times in UTC, as routilux-replay prints them (click for local time)";
    $("time-head").textContent = timeZone === "local" ? "time (local)" : "time (UTC)";
  }
  $("tz-btn").addEventListener("click", () => {
    setTimeZone(timeZone === "local" ? "utc" : "local");
    writeHash();
    renderRows();
    if (ui.win) renderCursorInfo(ui.win, ui.cursor);
    drawTimeline();
  });

  async function showEvent(v) {
    try {
      const ev = await source.event(v);
      openPanel(`Event ${v}`, (p) => {
        p.append(el("div", "", `${ev.kind}${ev.routine ? " · " + ev.routine : ""} · ${showTime(ev.time)}`));
        p.append(el("pre", "", JSON.stringify(ev.data, null, 2)));
      });
    } catch (err) { showError("event", err); }
  }

  async function refreshVerify(again) {
    const badge = $("verify-badge");
    try {
      const r = await source.verify(again);
      ui.verify = r;
      if (r.state === "running" || r.state === "pending") {
        badge.className = "badge pending";
        badge.textContent = "verify: running…";
        setTimeout(() => refreshVerify(false), 1000);
        return;
      }
      badge.className = `badge ${r.ok ? "ok" : "bad"}`;
      const snaps = r.snapshots_checked ?? 0;
      const upto = r.head_seq && r.head_seq < ui.head ? ` up to version ${r.head_seq}` : "";
      badge.textContent = r.ok ? `✓ verified${upto} · chain ok · ${snaps} snapshot${snaps === 1 ? "" : "s"} · head ${String(r.head_hash || "").slice(0, 12)}`
        : `✗ verify FAILED`;
      badge.title = `head hash ${r.head_hash} after version ${r.head_seq}` + (r.verified_at ? `\n${r.verified_at}` : "");
    } catch (err) { badge.className = "badge bad"; badge.textContent = "verify: error"; badge.title = err.message; }
  }
  $("verify-badge").addEventListener("click", () => {
    const r = ui.verify;
    openPanel("Verify", (p) => {
      if (!r || r.state !== "done") { p.append(el("div", "muted", "still verifying…")); return; }
      p.append(el("div", r.ok ? "" : "err", r.ok ? "Everything holds." : "A check failed."));
      const t = el("table");
      const rows = [["events", r.records], ["head version", r.head_seq], ["head hash", r.head_hash],
        ["snapshots checked", r.snapshots_checked], ...Object.entries(r.checks || {}).map(([k, v]) => [`check ${k}`, v === null ? "–" : v ? "ok" : "FAILED"])];
      if (r.verified_at) rows.push(["verified", r.verified_at]);
      for (const [k, v] of rows) { const tr = el("tr"); tr.append(el("td", "", k), el("td", "val", String(v))); t.append(tr); }
      p.append(t);
      for (const prob of r.problems || []) p.append(el("div", "err", `${prob.kind || "problem"}: ${prob.message}`));
      if (source.mode === "server") {
        const again = el("button", "", "verify again");
        again.addEventListener("click", () => refreshVerify(true));
        p.append(again);
      }
    });
  });

  async function jumpToFailure() {
    const r = await source.failure();
    if (r.version) { await setCursor(r.version); showEvent(r.version); }
    else openPanel("First failure", (p) => p.append(el("div", "", r.scanned ? "No failure is recorded in this job." : "The index is still reading the log; try again in a moment.")));
  }

  // ---------------------------------------------------------------------------------------
  // Timeline: lanes per routine, tasks as bars, zoom and pan
  // ---------------------------------------------------------------------------------------
  const tl = { t0: 0, t1: 1, end: 1, lanes: [], sub: null, nsub: [], marks: [], pauses: [], drag: null, fitted: false };
  const LANE_H = 24, AXIS_H = 18, LABEL_W = 90;

  // Tasks are kept dense; a live update replaces the rows it names and appends new ones.
  function mergeTasks(t) {
    if (!ui.tasks) {
      ui.tasks = t;
      t.index = new Map();
      for (let i = 0; i < t.n; i++) t.index.set(t.row[i], i);
      return;
    }
    const cur = ui.tasks;
    const grow = (arr, Type, n) => { if (arr.length >= n) return arr; const a = new Type(Math.max(n, arr.length * 2)); a.set(arr); return a; };
    const need = cur.n + t.n;
    for (const k of ["queued", "started", "ended"]) cur[k] = grow(cur[k], Float64Array, need);
    for (const k of ["lane", "qseq", "eseq", "row"]) cur[k] = grow(cur[k], Int32Array, need);
    cur.state = grow(cur.state, Uint8Array, need);
    for (let j = 0; j < t.n; j++) {
      let i = cur.index.get(t.row[j]);
      if (i === undefined) { i = cur.n++; cur.index.set(t.row[j], i); }
      cur.queued[i] = t.queued[j]; cur.started[i] = t.started[j]; cur.ended[i] = t.ended[j];
      cur.lane[i] = t.lane[j]; cur.qseq[i] = t.qseq[j]; cur.eseq[i] = t.eseq[j]; cur.state[i] = t.state[j];
      cur.row[i] = t.row[j];
    }
  }

  // Overlapping tasks of one routine go to sub-rows (greedy, in order of queueing).
  function layoutTasks() {
    const t = ui.tasks;
    if (!t) return;
    const order = Array.from({ length: t.n }, (_, i) => i).sort((x, y) => t.queued[x] - t.queued[y]);
    const ends = new Map();
    tl.sub = new Uint8Array(t.n);
    tl.order = order;
    const nsub = [];
    for (const i of order) {
      const lane = t.lane[i] < 0 ? tl.lanes.length - 1 : t.lane[i];
      let rows = ends.get(lane);
      if (!rows) { rows = []; ends.set(lane, rows); }
      const end = t.ended[i] >= 0 ? t.ended[i] : Infinity;
      let k = rows.findIndex((e) => e <= t.queued[i]);
      if (k < 0) { k = rows.length < 4 ? rows.length : rows.indexOf(Math.min(...rows)); if (k === rows.length) rows.push(0); }
      rows[k] = end;
      tl.sub[i] = k;
      nsub[lane] = Math.max(nsub[lane] || 1, k + 1);
    }
    tl.nsub = nsub;
  }

  // One load at a time; a request made meanwhile is served once the current one is in.
  async function loadTimeline(since) {
    if (tl.loading) { tl.again = true; return; }
    tl.loading = true;
    try {
      await loadTimelineOnce(since);
    } finally {
      tl.loading = false;
      if (tl.again) { tl.again = false; loadTimeline(tl.upto || 0); }
    }
  }

  async function loadTimelineOnce(since) {
    try {
      // The tasks are asked for after the timeline's answer: they then cover every change up
      // to its `upto` at least (the next load starts there), while the index keeps growing.
      const meta = await source.timeline(since);
      const tasks = await source.tasks(since);
      if (since !== 0 && since !== (tl.upto || 0)) return; // an answer to an older request
      const unrouted = meta.marks.some((m) => m[1] < 0) || Array.from(tasks.lane.slice(0, tasks.n)).some((l) => l < 0);
      tl.lanes = unrouted || tl.lanes.includes("(no routine)") ? [...meta.routines, "(no routine)"] : [...meta.routines];
      if (since === 0) { tl.marks = meta.marks; tl.pauses = meta.pauses; ui.tasks = null; }
      else {
        tl.marks = tl.marks.concat(meta.marks);
        const byStart = new Map(tl.pauses.map((p) => [p[0], p]));
        for (const p of meta.pauses) byStart.set(p[0], p);
        tl.pauses = [...byStart.values()].sort((x, y) => x[0] - y[0]);
      }
      mergeTasks(tasks);
      // The run's whole span is known before every event is indexed (the head's time).
      tl.end = Math.max(meta.end_ms, (ui.meta && ui.meta.span_ms) || 0, 0.001);
      tl.upto = meta.upto;
      layoutTasks();
      if (!tl.fitted || (ui.follow && tl.t1 >= tl.prevEnd)) { fitBounds(); tl.fitted = true; }
      tl.prevEnd = tl.end;
      $("timeline-info").textContent = `${ui.tasks ? ui.tasks.n.toLocaleString() : 0} tasks · ${fmtMs(tl.end)}`
        + (meta.upto < ui.head ? ` · read up to version ${meta.upto.toLocaleString()}…` : "");
      $("timeline-info").title = `the axis counts from the first event, at ${showTime(ui.meta.first_time)}`;
      ui.timeline = meta;
      if (ui.headStatus === "paused") updateNote();
      if (ui.tasks && ui.tasks.n && ui.perf.firstTimeline === null) ui.perf.firstTimeline = performance.now();
      if (meta.upto >= ui.head && ui.perf.fullTimeline === null) ui.perf.fullTimeline = performance.now();
      sizeCanvas();
      drawTimeline();
      renderRows(); // the timeline's height changed the list's
    } catch (err) { showError("timeline", err); }
  }

  function sizeCanvas() {
    const c = $("timeline");
    const wrap = $("timeline-wrap");
    const h = AXIS_H + Math.max(1, tl.lanes.length) * LANE_H + 6;
    const height = `${Math.min(Math.max(h, 80), 320)}px`;
    if (wrap.style.height !== height) {
      wrap.style.height = height;
      requestAnimationFrame(() => revealInList(ui.cursor)); // the list got shorter or taller
    }
    const dpr = window.devicePixelRatio || 1;
    c.width = Math.round(c.clientWidth * dpr);
    c.height = Math.round(c.clientHeight * dpr);
  }

  let drawQueued = false;
  function drawTimeline() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => { drawQueued = false; paintTimeline(); });
  }

  function paintTimeline() {
    const c = $("timeline");
    const ctx = c.getContext("2d");
    const dpr = window.devicePixelRatio || 1;
    const W = c.width / dpr, H = c.height / dpr;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, W, H);
    ctx.font = "11px system-ui, sans-serif";
    const plotW = Math.max(10, W - LABEL_W - 6);
    const x = (ms) => LABEL_W + ((ms - tl.t0) / (tl.t1 - tl.t0)) * plotW;
    // lanes
    for (let l = 0; l < tl.lanes.length; l++) {
      const y = AXIS_H + l * LANE_H;
      ctx.fillStyle = l % 2 ? "#f7f8fa" : "#ffffff";
      ctx.fillRect(0, y, W, LANE_H);
      ctx.fillStyle = "#4a5260";
      ctx.fillText(tl.lanes[l].slice(0, 14), 4, y + 15);
    }
    // everything on the time axis stays right of the lane labels
    ctx.save();
    ctx.beginPath();
    ctx.rect(LABEL_W, 0, W - LABEL_W, H);
    ctx.clip();
    // pauses
    ctx.fillStyle = "rgba(240, 180, 40, 0.28)";
    for (const [, p1, m0, m1] of tl.pauses) {
      const a = x(m0), b = x(p1 ? m1 : tl.end);
      if (b < LABEL_W || a > W) continue;
      ctx.fillRect(Math.max(a, LABEL_W), AXIS_H, Math.max(2, b - Math.max(a, LABEL_W)), H - AXIS_H);
      if (!p1 && a >= LABEL_W) { // still paused: mark where it began (the band may be a pixel wide)
        ctx.fillStyle = "#b8860b";
        ctx.fillText("⏸", a - 4, AXIS_H + 11);
        ctx.fillStyle = "rgba(240, 180, 40, 0.28)";
      }
    }
    // tasks: zoomed out, thousands of bars share a pixel, so touching bars of one colour in
    // one sub-row are merged into a single rectangle (a few thousand draws at most).
    const t = ui.tasks;
    if (t && tl.order) {
      const slots = tl.lanes.length * 4;
      const runX0 = new Float64Array(slots).fill(-1), runX1 = new Float64Array(slots).fill(-1);
      const runC = new Int8Array(slots).fill(-1);
      const colors = ["#2fa36b", "#2fa36b", "#3d7be0", "#d23b3b"];
      const flush = (slot) => {
        if (runC[slot] < 0) return;
        const lane = Math.floor(slot / 4), k = slot % 4;
        const ns = tl.nsub[lane] || 1;
        const hh = (LANE_H - 6) / ns;
        ctx.fillStyle = colors[runC[slot]];
        ctx.fillRect(runX0[slot], AXIS_H + lane * LANE_H + 3 + k * hh, runX1[slot] - runX0[slot], hh - 1);
        runC[slot] = -1;
      };
      ctx.fillStyle = "#b9cdf2";
      for (const i of tl.order) {
        const q = t.queued[i];
        if (q > tl.t1) break;
        const end = t.ended[i] >= 0 ? t.ended[i] : tl.end;
        if (end < tl.t0) continue;
        const lane = t.lane[i] < 0 ? tl.lanes.length - 1 : t.lane[i];
        const k = tl.sub[i];
        const slot = lane * 4 + k;
        const xq = x(q), s = t.started[i];
        const xs = s >= 0 ? x(s) : xq;
        const st = t.state[i];
        const xe = Math.max(x(end), xs + 1.5);
        if (xs - xq >= 1) { // the time it waited in the queue, when it is visible at this zoom
          const ns = tl.nsub[lane] || 1;
          const hh = (LANE_H - 6) / ns;
          ctx.fillStyle = "#b9cdf2";
          ctx.fillRect(xq, AXIS_H + lane * LANE_H + 3 + k * hh, xs - xq, hh - 1);
        }
        if (runC[slot] === st && xs <= runX1[slot] + 0.5) { runX1[slot] = Math.max(runX1[slot], xe); continue; }
        flush(slot);
        runC[slot] = st; runX0[slot] = xs; runX1[slot] = xe;
      }
      for (let slot = 0; slot < slots; slot++) flush(slot);
    }
    // marks: a glyph each; where they crowd (closer than a glyph's width in a lane), a thin
    // tick instead, so that many marks read as many ticks, not as one solid band.
    const lastGlyph = new Map();
    for (const [, laneRaw, kind, ms] of tl.marks) {
      const px = x(ms);
      if (px < LABEL_W || px > W) continue;
      const lane = laneRaw < 0 ? tl.lanes.length - 1 : laneRaw;
      const y = AXIS_H + lane * LANE_H;
      ctx.fillStyle = kind === "error" ? "#d23b3b" : kind === "retried" ? "#8a3fd1" : kind === "continued" ? "#e07b00" : "#555";
      if (px - (lastGlyph.get(lane) ?? -Infinity) < 10) { ctx.fillRect(Math.round(px), y + 1, 1, 5); continue; }
      lastGlyph.set(lane, px);
      ctx.fillText(kind === "error" ? "▼" : kind === "retried" ? "↻" : kind === "continued" ? "◆" : "●", px - 4, y + 10);
    }
    ctx.restore();
    // axis
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, W, AXIS_H);
    ctx.strokeStyle = "#dde1e6";
    ctx.beginPath(); ctx.moveTo(0, AXIS_H - 0.5); ctx.lineTo(W, AXIS_H - 0.5); ctx.stroke();
    const span = tl.t1 - tl.t0;
    const raw = span / Math.max(1, plotW / 90);
    const pow = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * pow).find((s) => s >= raw) || pow * 10;
    ctx.fillStyle = "#6b7483";
    for (let v = Math.ceil(tl.t0 / step) * step; v <= tl.t1; v += step) {
      const px = x(v);
      if (px < LABEL_W) continue;
      ctx.fillRect(px, AXIS_H - 5, 1, 5);
      const label = `+${fmtMs(v)}`;
      if (px + 2 + ctx.measureText(label).width <= W) ctx.fillText(label, px + 2, 12);
    }
    // The axis counts from the first event: its time of day (to the second, with the zone).
    const origin = timeAtMs(0);
    if (origin) {
      const clock = origin.slice(11, 19) + origin.slice(26);
      ctx.fillStyle = "#4a5260";
      ctx.fillText(clock, 4, 12);
    }
    // cursor
    if (ui.win && ui.win.ms) {
      const ms = ui.win.ms[ui.cursor - ui.win.base];
      const px = x(ms);
      if (px >= LABEL_W && px <= W) {
        ctx.fillStyle = "#2f6fde";
        ctx.fillRect(px - 1, 0, 2, H);
      }
    }
  }

  function hitTask(mx, my) {
    const t = ui.tasks;
    if (!t || !tl.order) return -1;
    const c = $("timeline");
    const plotW = Math.max(10, c.clientWidth - LABEL_W - 6);
    const lane = Math.floor((my - AXIS_H) / LANE_H);
    if (lane < 0 || lane >= tl.lanes.length) return -1;
    const ms = tl.t0 + ((mx - LABEL_W) / plotW) * (tl.t1 - tl.t0);
    const tol = (3 / plotW) * (tl.t1 - tl.t0);
    let best = -1;
    for (const i of tl.order) {
      if (t.queued[i] > ms + tol) break;
      const l = t.lane[i] < 0 ? tl.lanes.length - 1 : t.lane[i];
      if (l !== lane) continue;
      const end = t.ended[i] >= 0 ? t.ended[i] : tl.end;
      if (end + tol >= ms) { best = i; if (t.state[i] === 3) break; }
    }
    return best;
  }

  const canvas = $("timeline");
  canvas.addEventListener("wheel", (e) => {
    e.preventDefault();
    const r = canvas.getBoundingClientRect();
    const plotW = Math.max(10, r.width - LABEL_W - 6);
    const at = tl.t0 + ((e.clientX - r.left - LABEL_W) / plotW) * (tl.t1 - tl.t0);
    const f = Math.exp((e.deltaY || e.deltaX) * 0.0015);
    zoomAt(at, f);
  }, { passive: false });
  function zoomAt(at, f) {
    const span = Math.max(1e-4, (tl.t1 - tl.t0) * f);
    const rel = (at - tl.t0) / (tl.t1 - tl.t0);
    tl.t0 = at - rel * span;
    tl.t1 = tl.t0 + span;
    drawTimeline();
  }
  canvas.addEventListener("mousedown", (e) => { tl.drag = { x: e.clientX, t0: tl.t0, t1: tl.t1, moved: false }; });
  window.addEventListener("mouseup", async (e) => {
    const d = tl.drag;
    tl.drag = null;
    if (!d || d.moved || e.target !== canvas) return;
    const r = canvas.getBoundingClientRect();
    const mx = e.clientX - r.left, my = e.clientY - r.top;
    const i = hitTask(mx, my);
    if (i >= 0) {
      const t = ui.tasks;
      await setCursor(t.eseq[i] > 0 ? t.eseq[i] : t.qseq[i]);
      return;
    }
    if (mx > LABEL_W) {
      const plotW = Math.max(10, r.width - LABEL_W - 6);
      const ms = tl.t0 + ((mx - LABEL_W) / plotW) * (tl.t1 - tl.t0);
      if (ms >= 0) { const v = await source.versionAt(ms.toFixed(6)); await setCursor(v.version); }
    }
  });
  canvas.addEventListener("mousemove", (e) => {
    const r = canvas.getBoundingClientRect();
    if (tl.drag) {
      const plotW = Math.max(10, r.width - LABEL_W - 6);
      const dx = e.clientX - tl.drag.x;
      if (Math.abs(dx) > 3) tl.drag.moved = true;
      const shift = (dx / plotW) * (tl.drag.t1 - tl.drag.t0);
      tl.t0 = tl.drag.t0 - shift; tl.t1 = tl.drag.t1 - shift;
      drawTimeline();
      return;
    }
    const mx = e.clientX - r.left, my = e.clientY - r.top;
    const i = hitTask(mx, my);
    const tip = $("timeline-tip");
    if (i < 0) {
      if (mx <= LABEL_W) { tip.hidden = true; return; }
      const plotW = Math.max(10, r.width - LABEL_W - 6);
      const ms = tl.t0 + ((mx - LABEL_W) / plotW) * (tl.t1 - tl.t0);
      if (ms < 0) { tip.hidden = true; return; }
      tip.textContent = `+${fmtMs(ms)} · ${timeAtMs(ms)}\nclick: go to the version at this time`;
    } else {
      const t = ui.tasks;
      const state = ["queued", "running", "finished", "FAILED"][t.state[i]];
      const lane = t.lane[i] < 0 ? "(no routine)" : tl.lanes[t.lane[i]];
      const ran = t.ended[i] >= 0 ? fmtMs(t.ended[i] - (t.started[i] >= 0 ? t.started[i] : t.queued[i])) : "still open";
      tip.textContent = `${lane} · ${state}\nqueued +${fmtMs(t.queued[i])} · ${timeAtMs(t.queued[i])} (version ${t.qseq[i]})\n`
        + (t.eseq[i] ? `ended +${fmtMs(t.ended[i])} · ${timeAtMs(t.ended[i])} (version ${t.eseq[i]}) · ${ran}` : "not ended yet")
        + "\nclick: go to its end";
    }
    tip.style.left = `${Math.min(e.clientX - r.left + 12, r.width - 220)}px`;
    tip.style.top = `${Math.max(0, e.clientY - r.top - 10)}px`;
    tip.hidden = false;
  });
  canvas.addEventListener("mouseleave", () => { $("timeline-tip").hidden = true; });
  canvas.addEventListener("dblclick", () => fitTimeline());
  // The whole run, or the range of versions a saved page holds.
  function fitBounds() {
    const [a, b] = (ui.meta && ui.meta.range_ms) || [0, tl.end];
    const pad = Math.max((b - a) * 0.02, 1e-3);
    tl.t0 = Math.max(0, a - pad); tl.t1 = b + pad;
  }
  function fitTimeline() { fitBounds(); drawTimeline(); }
  $("zoom-in").addEventListener("click", () => zoomAt((tl.t0 + tl.t1) / 2, 0.5));
  $("zoom-out").addEventListener("click", () => zoomAt((tl.t0 + tl.t1) / 2, 2));
  $("zoom-reset").addEventListener("click", fitTimeline);
  window.addEventListener("resize", () => { sizeCanvas(); drawTimeline(); renderRows(); });

  // ---------------------------------------------------------------------------------------
  // Live follow
  // ---------------------------------------------------------------------------------------
  let liveTimer = 0;
  function startLive() {
    if (source.mode !== "server") return;
    if (!ui.meta.live) {
      // A saved file never grows: poll the index's progress until both passes are done.
      const poll = async () => {
        const m = await source.meta();
        onProgress({ head: m.head, indexed: m.indexed, scanned: m.scanned, attributed: m.attributed, error: m.index_error });
        if (!m.scanned || m.attributed < m.indexed) setTimeout(poll, 300);
      };
      if (!ui.meta.scanned || ui.meta.attributed < ui.meta.indexed) setTimeout(poll, 300);
      return;
    }
    const es = new EventSource(`/api/live?${jobQuery.slice(1)}`);
    es.addEventListener("head", (e) => onProgress(JSON.parse(e.data)));
  }

  // The index's progress (server-sent every 200 ms at most while anything moves).
  function onProgress(m) {
    const grew = m.head > ui.head;
    if (m.error && !ui.indexError) { ui.indexError = m.error; showBanner(`The log could not be read past version ${m.indexed}: ${m.error}`, true); }
    const indexedMore = m.indexed > ui.indexed;
    const attributedMore = m.attributed > ui.attributed;
    ui.indexed = m.indexed; ui.attributed = m.attributed;
    updateIndexProgress(m);
    if (indexedMore || grew) { // the lanes grow as the index reads the log (at most every 400 ms while it reads)
      const now = performance.now();
      if (m.scanned || now - (tl.lastLoad || 0) > 400) { tl.lastLoad = now; loadTimeline(tl.upto || 0); }
      else if (!tl.pendingLoad) tl.pendingLoad = setTimeout(() => { tl.pendingLoad = 0; tl.lastLoad = performance.now(); loadTimeline(tl.upto || 0); }, 400);
    }
    const done = m.scanned && m.attributed >= m.indexed;
    if (done && !ui.indexDone) { ui.indexDone = true; refreshMeta(); }
    else if (m.scanned && !ui.scannedSeen) { ui.scannedSeen = true; refreshMeta(); }
    ui.scannedSeen = ui.scannedSeen || m.scanned;
    // The history counts of the cursor's window are known once the index has read it.
    if (ui.counts === null && m.indexed >= ui.cursor && !grew) setCursor(ui.cursor, { fromList: true });
    if (grew) {
      ui.head = m.head;
      $("slider").max = ui.head;
      $("head-version").textContent = ui.head.toLocaleString();
      $("live-badge").hidden = false;
      clearTimeout(liveTimer);
      liveTimer = setTimeout(() => { $("live-badge").hidden = true; }, 3000);
      // drop cached windows that were cut at the old head
      for (const [k, w] of windowCache) if (w.last >= ui.head - 1 || !w.counts) windowCache.delete(k);
      if (!isFiltered()) {
        const lastBlock = Math.floor(Math.max(0, list.total - 1) / BLOCK);
        list.total = ui.head - ui.lo + 1;
        updateListSize();
        for (let b = lastBlock; b <= Math.floor((list.total - 1) / BLOCK); b++) list.blocks.delete(b);
        loadBlock(lastBlock);
      }
      if (ui.follow) setCursor(ui.head);
      refreshStatus();
    }
    // A filtered list that may have grown, or rows whose routines were not known yet: ask again.
    const stale = isFiltered() && !list.complete && (indexedMore || attributedMore || grew);
    const unknown = attributedMore && [...list.blocks.values()].some((blk) => blk.after !== null);
    if (stale || unknown || (grew && isFiltered())) refreshList();
  }

  function isFiltered() { return Boolean(ui.filter.kinds.length || ui.filter.routine || ui.filter.text); }

  function updateIndexProgress(m) {
    const parts = [];
    if (!m.scanned) parts.push(`indexing ${m.indexed.toLocaleString()} / ${ui.head.toLocaleString()}`);
    if (m.attributed < m.indexed || !m.scanned) {
      const of = Math.max(m.indexed, 1);
      parts.push(`routines ${Math.min(100, Math.floor((100 * m.attributed) / of))}%`);
    }
    $("index-progress").textContent = parts.length ? `${parts.join(" · ")}…` : "";
    $("index-progress").title = parts.length ? "the page is usable meanwhile; the timeline and filters fill in as these finish" : "";
  }

  async function refreshMeta() {
    const m = await source.meta();
    ui.meta = m;
    buildFilters();
    if (m.index_error) showBanner(`The log is damaged: ${m.index_error}. Events before the damage are shown.`, true);
    loadTimeline(tl.upto || 0);
    if (isFiltered()) refreshList();
  }

  async function refreshStatus() {
    try {
      const w = await getWindow(ui.head);
      const s = clone(w.state);
      for (let i = w.base + 1; i <= ui.head; i++) applyPatch(s, w.patches[i - w.base]);
      const pill = $("job-status");
      pill.textContent = s.status;
      pill.className = `pill ${s.status}`;
      ui.headStatus = s.status;
      updateNote();
    } catch (err) { /* shown elsewhere */ }
  }

  // One line under the tools for a job that ended badly or waits: where to look first.
  let noteKey = "";
  async function updateNote() {
    const note = $("note");
    const status = ui.headStatus;
    let key = status;
    let fill = null;
    if (status === "failed") {
      const f = await source.failure();
      key += `:${f.version}`;
      if (f.version) {
        fill = (box) => box.append(`The job failed. Its first failure is at version `, jumpLink(f.version),
          " (press f: the cursor goes there and the event opens).");
      } else {
        fill = (box) => box.append("The job failed." + (f.scanned ? "" : " Looking for its first failure…"));
      }
    } else if (status === "paused") {
      const open = tl.pauses.filter((p) => !p[1]).pop();
      key += `:${open ? open[0] : "?"}`;
      if (open) {
        let reason = "";
        try { const ev = await source.event(open[0]); reason = ev.data && typeof ev.data.reason === "string" ? ev.data.reason : ""; } catch (err) { /* no reason shown */ }
        fill = (box) => box.append("The job is paused since version ", jumpLink(open[0]), reason ? `: ${reason}` : "", ".");
      } else fill = (box) => box.append("The job is paused.");
    }
    if (key === noteKey) return;
    noteKey = key;
    note.textContent = "";
    note.className = status || "";
    note.hidden = !fill;
    if (fill) fill(note);
  }

  function showBanner(text, isError) {
    const b = $("banner");
    b.hidden = false;
    b.className = isError ? "error" : "";
    b.textContent = text;
  }

  // ---------------------------------------------------------------------------------------
  // Keyboard
  // ---------------------------------------------------------------------------------------
  function markA() { ui.a = ui.cursor; markText(); writeHash(); }
  function markB() { ui.b = ui.cursor; markText(); writeHash(); }
  document.addEventListener("keydown", (e) => {
    const tag = (e.target && e.target.tagName) || "";
    const typing = (tag === "INPUT" && e.target.type !== "range" && e.target.type !== "checkbox")
      || tag === "SELECT" || tag === "TEXTAREA";
    if (typing) {
      if (e.key === "Escape") e.target.blur();
      return;
    }
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const step = e.shiftKey ? 100 : 1;
    switch (e.key) {
      case "ArrowLeft": case "ArrowUp": e.preventDefault(); setCursor(ui.cursor - step); break;
      case "ArrowRight": case "ArrowDown": e.preventDefault(); setCursor(ui.cursor + step); break;
      case "PageUp": e.preventDefault(); setCursor(ui.cursor - 1000); break;
      case "PageDown": e.preventDefault(); setCursor(ui.cursor + 1000); break;
      case "Home": e.preventDefault(); setCursor(ui.lo); break;
      case "End": e.preventDefault(); setCursor(ui.head); break;
      case "a": markA(); break;
      case "b": markB(); break;
      case "d": runDiff(); break;
      case "f": jumpToFailure(); break;
      case "g": e.preventDefault(); $("version-input").focus(); $("version-input").select(); break;
      case "/": e.preventDefault(); $("text-filter").focus(); break;
      case "i": e.preventDefault(); $("bisect-input").focus(); break;
      case "l": $("follow-check").click(); break;
      case "+": case "=": zoomAt((tl.t0 + tl.t1) / 2, 0.5); break;
      case "-": zoomAt((tl.t0 + tl.t1) / 2, 2); break;
      case "0": fitTimeline(); break;
      case "?": $("help").hidden = !$("help").hidden; break;
      case "Escape": $("help").hidden = true; $("panel-box").hidden = true; break;
      default: return;
    }
  });
  $("help-btn").addEventListener("click", () => { $("help").hidden = !$("help").hidden; });
  $("help-close").addEventListener("click", () => { $("help").hidden = true; });
  $("slider").addEventListener("input", () => setCursor(Number($("slider").value)));
  $("version-input").addEventListener("change", () => setCursor(Number($("version-input").value)));
  $("go-first").addEventListener("click", () => setCursor(ui.lo));
  $("go-prev").addEventListener("click", () => setCursor(ui.cursor - 1));
  $("go-next").addEventListener("click", () => setCursor(ui.cursor + 1));
  $("go-last").addEventListener("click", () => setCursor(ui.head));
  $("mark-a").addEventListener("click", markA);
  $("mark-b").addEventListener("click", markB);
  $("diff-btn").addEventListener("click", runDiff);
  $("failure-btn").addEventListener("click", jumpToFailure);
  $("follow-check").addEventListener("change", () => {
    ui.follow = $("follow-check").checked;
    writeHash();
    if (ui.follow) setCursor(ui.head);
  });
  $("events").addEventListener("dblclick", (e) => {
    const row = e.target.closest(".row");
    if (row && row.dataset.seq) showEvent(Number(row.dataset.seq));
  });

  // ---------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------
  // A job store: list its jobs; each links to this page with ?job=ID.
  async function showPicker() {
    let store;
    try {
      const resp = await fetch("/api/jobs", { cache: "no-store" });
      if (resp.status === 404) return false; // one job
      store = await resp.json();
      if (!resp.ok) throw new Error(store.error || `HTTP ${resp.status}`);
    } catch (err) {
      showBanner(`Cannot list the jobs: ${err.message}`, true);
      return true;
    }
    if (JOB) {
      const back = el("a", "back", "← all jobs");
      back.href = location.pathname + location.search.replace(/[?&]job=[^&]*/, "").replace(/^&/, "?");
      $("top").insertBefore(back, $("job-title"));
      return false;
    }
    document.title = `routilux-replay · ${store.store}`;
    $("job-title").textContent = `job store ${store.store} · ${store.jobs.length} job${store.jobs.length === 1 ? "" : "s"}`;
    for (const id of ["scrubber", "tools", "main", "keys", "verify-badge"]) $(id).hidden = true;
    const box = el("section", "picker");
    box.id = "picker";
    box.append(el("h2", "", "Pick a job"));
    const t = el("table");
    const hd = el("tr");
    for (const h of ["job", "flow", "status", "version", "updated", "size"]) hd.append(el("th", "", h));
    t.append(hd);
    for (const j of store.jobs) {
      const tr = el("tr", "job-row");
      const a = el("a", "", j.job_id);
      const qs = new URLSearchParams(location.search);
      qs.set("job", j.job_id);
      a.href = `${location.pathname}?${qs}`;
      const td = el("td"); td.append(a);
      tr.append(td, el("td", "", j.flow_id), el("td", `status ${j.status}`, j.status), el("td", "num", String(j.version)),
        el("td", "", j.updated || "–"), el("td", "num", `${(j.size / 1024).toFixed(1)} KiB`));
      t.append(tr);
    }
    box.append(t);
    if (!store.jobs.length) box.append(el("p", "muted", "This store holds no jobs yet."));
    document.body.insertBefore(box, $("keys"));
    document.body.dataset.ready = "1";
    return true;
  }

  async function start() {
    if (source.mode === "server" && await showPicker()) return;
    let meta;
    try {
      meta = await source.meta();
    } catch (err) {
      showBanner(`Cannot load the job: ${err.message}`, true);
      return;
    }
    ui.meta = meta;
    ui.head = meta.head;
    ui.lo = meta.range[0];
    document.title = `routilux-replay · ${meta.flow_id || "job"} ${meta.job_id.slice(0, 8)}`;
    $("job-title").textContent = `${meta.flow_id} · ${meta.job_id} · ${meta.form}`;
    $("job-title").title = meta.path;
    $("head-version").textContent = meta.head.toLocaleString();
    $("slider").min = ui.lo;
    $("slider").max = meta.head;
    $("version-input").min = ui.lo;
    $("version-input").max = meta.head;
    if (meta.left_out) showBanner(meta.left_out, false);
    if (meta.index_error) showBanner(`The log is damaged: ${meta.index_error}. Events before the damage are shown.`, true);
    if (source.mode === "file") setUpFileBisect();
    const h = readHash();
    setTimeZone(h.tz);
    ui.a = h.a; ui.b = h.b; ui.follow = h.follow;
    $("follow-check").checked = ui.follow;
    ui.filter = { kinds: h.kinds ? h.kinds.split(",") : [], routine: h.routine, text: h.text };
    $("text-filter").value = ui.filter.text;
    $("kind-summary").textContent = ui.filter.kinds.length ? ui.filter.kinds.join(", ") : "all kinds";
    markText();
    buildFilters();
    const v = h.v && h.v >= ui.lo && h.v <= meta.head ? h.v : meta.head;
    list.gen++;
    loadBlock(0).then(() => revealInList(ui.cursor)); // the list's height is known once rows arrive
    await setCursor(v);
    ui.ready = true;
    document.body.dataset.ready = "1";
    refreshStatus();
    ui.indexed = meta.indexed; ui.attributed = meta.attributed ?? meta.indexed;
    ui.scannedSeen = meta.scanned;
    ui.indexDone = meta.scanned && ui.attributed >= meta.indexed;
    updateIndexProgress({ indexed: meta.indexed, scanned: meta.scanned, attributed: ui.attributed });
    loadTimeline(0); // what is indexed so far; the rest arrives with the progress events
    refreshVerify(false);
    startLive();
  }
  start();
})();
