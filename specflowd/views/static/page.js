// specflowd's live page: the board from /events (server-sent events), drawn with DOM calls only.
// Every string that comes from a task list, an agent or a commit is put into the page as text
// (textContent, a text node, a title), never as markup, and its control characters (terminal
// escapes, bidi overrides) are shown as \xNN escapes: nothing from the data is ever run or styled.
"use strict";

(() => {
  const RECENT_MS = 12000; // how long a changed task, card or feed entry stays highlighted
  const FEED_SHOWN = 12; // feed entries listed under each project
  const TIMELINE_MS = 60 * 60 * 1000; // the timeline spans at most the last hour
  const FINISHED = new Set(["done", "skipped"]);
  const SHA = /^[0-9a-f]{7,40}$/;

  const state = {
    board: null, // {host, projects: [{root, name, branch, orchestrations, feed, problems}], agents, missing}
    offset: 0, // browser clock minus server clock, from the snapshot
    recent: new Map(), // "root\nspec\ntask" or "commit:<sha>" -> when it changed (browser ms)
    arrived: new Map(), // agent card id -> when it first showed (0: it was there when the page opened)
    open: new Set(), // orchestrations whose decisions are unfolded
    panel: null, // {kind: "feed", root, spec, entries} or {kind: "commit", root, sha, commit}
    drawing: false,
  };

  // ---- text --------------------------------------------------------------------------------

  const CONTROL = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

  function visible(value) {
    return String(value ?? "").replace(CONTROL, (c) => {
      const n = c.codePointAt(0);
      return n < 0x100 ? "\\x" + n.toString(16).padStart(2, "0") : "\\u" + n.toString(16).padStart(4, "0");
    });
  }

  function el(tag, props, ...kids) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = visible(value);
      else if (key === "title") node.title = visible(value);
      else if (key === "data") for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
      else if (key === "style") for (const [k, v] of Object.entries(value)) node.style.setProperty(k, v);
      else if (key === "href") node.setAttribute("href", value); // only links this script builds
      else if (key === "on") for (const [k, v] of Object.entries(value)) node.addEventListener(k, v);
      else node.setAttribute(key, String(value));
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      node.append(typeof kid === "string" ? visible(kid) : kid);
    }
    return node;
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s >= 3600) return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
    return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  }

  const usd = (v) => `$${Number(v || 0).toFixed(2)}`;
  const serverNow = () => Date.now() - state.offset;
  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });
  const taskKey = (root, spec, task) => `${root}\n${spec}\n${task}`;
  const feedLink = (root, spec) => `#feed/${encodeURIComponent(root)}/${encodeURIComponent(spec)}`;
  const commitLink = (root, sha) => `#commit/${encodeURIComponent(root)}/${sha}`;

  // A changed thing keeps its highlight across redraws: its animation is started back in time by
  // how long ago it changed, so that it fades once, wherever the redraw finds it.
  function since(node, at, cls) {
    if (at === undefined) return node;
    const age = Date.now() - at;
    if (age >= RECENT_MS) return node;
    node.classList.add(cls);
    node.style.setProperty("animation-delay", `${-age}ms`);
    return node;
  }

  function bar(done, total, label) {
    const share = total > 0 ? Math.min(1, done / total) : 0;
    return el("div", { class: "bar", title: label, role: "progressbar", "aria-valuenow": done, "aria-valuemax": total },
      el("span", { class: "fill", style: { width: `${(share * 100).toFixed(1)}%` } }),
      el("span", { class: "label", text: label }));
  }

  // ---- drawing -----------------------------------------------------------------------------

  function draw() {
    state.drawing = false;
    const board = state.board;
    if (!board) return;
    document.getElementById("host").textContent = visible(`on ${board.host}`);
    const running = board.agents.filter((a) => a.state === "running").length;
    const orchestrations = board.projects.reduce((n, p) => n + p.orchestrations.length, 0);
    document.getElementById("counts").textContent =
      `${board.projects.length} project(s), ${orchestrations} orchestration(s), ${running} agent(s) running`;
    const current = new Set(board.agents.map((a) => a.id));
    for (const id of state.arrived.keys()) if (!current.has(id)) state.arrived.delete(id);
    const agents = document.getElementById("agents");
    agents.replaceChildren(...(board.agents.length ? board.agents.map(card)
      : [el("p", { class: "empty", text: "no agent is running or waiting" })]));
    document.getElementById("projects").replaceChildren(...board.projects.map(project));
    document.getElementById("missing").textContent = visible((board.missing || []).join("; "));
  }

  function redraw() {
    if (state.drawing) return;
    state.drawing = true;
    requestAnimationFrame(draw);
  }

  function card(a) {
    if (!state.arrived.has(a.id)) state.arrived.set(a.id, Date.now());
    const node = el("article", { class: "card", data: { card: a.id, state: a.state, orchestration: a.orchestration } },
      el("header", {},
        el("span", { class: "host", text: a.host }),
        el("a", { class: "spec", href: feedLink(a.project, a.spec), text: a.spec }),
        el("span", { class: "batch", text: a.batch ? `batch ${a.batch}` : a.phase })),
      el("ol", { class: "around" }, a.around.map((t) =>
        since(el("li", { class: t.current ? "current" : "", data: { task: t.task, status: t.status } },
          el("span", { class: "id", text: t.task }), " ", el("span", { class: "title", text: t.title })),
        state.recent.get(taskKey(a.project, a.spec, t.task)), "recent"))),
      a.around.length ? null : el("p", { class: "quiet", text: `${a.phase}: ${a.purpose}` }),
      el("footer", {},
        el("span", { class: "state", text: a.state === "running" ? `${a.phase} · run ${a.run} (${a.purpose})` : a.state }),
        el("span", { class: "elapsed", data: a.started_at ? { since: a.started_at } : {},
                     text: duration(a.started_at ? (serverNow() - Date.parse(a.started_at)) / 1000 : a.run_time_s) }),
        el("span", { class: "cost", title: `orchestration ${usd(a.orchestration_cost_usd)}`, text: usd(a.cost_usd) })));
    return since(node, state.arrived.get(a.id), "arrived");
  }

  function project(p) {
    return el("section", { class: "project", data: { project: p.root } },
      el("h2", {}, p.name, " ", el("small", { text: `${p.root} · ${p.branch}` })),
      timeline(p),
      p.problems.map((why) => el("p", { class: "problem", text: why })),
      p.orchestrations.length ? p.orchestrations.slice().reverse().map((o) => orchestration(p, o))
        : el("p", { class: "empty", text: "no orchestrations yet" }),
      el("h3", { text: "Recent feed" }),
      el("ol", { class: "feed" }, p.feed.slice(-FEED_SHOWN).reverse().map((e) => entry(p.root, e))));
  }

  function orchestration(p, o) {
    const running = !["completed", "failed", "cancelled"].includes(o.status);
    const begun = o.started_at || o.created_at;
    const node = el("article", { class: "orch", data: { orchestration: o.orchestration, status: o.status } },
      el("header", {},
        el("a", { class: "spec", href: feedLink(p.root, o.spec), text: o.spec, title: "the spec's feed" }),
        el("code", { text: o.orchestration }),
        el("span", { class: "status", data: { status: o.status }, text: o.status.replace("_", " ") }),
        el("span", { class: "phase", text: o.phase }),
        el("span", { class: "batch", text: o.batch ? `batch ${o.batch}` : `${o.batches_done}/${o.batches_total} batches` }),
        el("span", { class: "elapsed", data: running ? { since: begun } : {},
                     text: duration(running ? (serverNow() - Date.parse(begun)) / 1000 : o.elapsed_s) })),
      bar(o.tasks_done, o.tasks_total, `${o.tasks_done}/${o.tasks_total} tasks`),
      o.waiting_until ? el("p", { class: "waiting", text: `waiting for a usage limit until ${clock(o.waiting_until)}` }) : null,
      o.error && ["needs_attention", "failed"].includes(o.status) ? el("p", { class: "error", text: o.error }) : null,
      el("div", { class: "budgets" }, o.budgets.map((b) =>
        el("div", { class: "budget", data: { budget: b.name } },
          el("span", { class: "name", text: b.name }),
          bar(b.spent_usd, b.limit_usd, `${usd(b.spent_usd)} of ${usd(b.limit_usd)}`)))),
      el("ol", { class: "batches" }, o.batches.map((b) => batch(p, o, b))),
      decisions(o));
    return node;
  }

  function batch(p, o, b) {
    const done = b.tasks.filter((t) => FINISHED.has(o.tasks[t]?.status)).length;
    return el("li", { class: "batch", data: { batch: b.index, status: b.status } },
      el("span", { class: "name", text: `${b.index}. ${b.name}` }),
      el("span", { class: "status", data: { status: b.status },
                   text: b.status + (b.heal_attempts ? ` · ${b.heal_attempts} heal${b.heal_attempts > 1 ? "s" : ""}` : "") }),
      bar(done, b.tasks.length, `${done}/${b.tasks.length}`),
      el("ul", { class: "tasks" }, b.tasks.map((t) => {
        const task = o.tasks[t] || { status: "pending", title: "" };
        return since(el("li", { class: "task", data: { task: t, status: task.status }, title: `${t} ${task.title}` },
          el("span", { class: "id", text: t }), el("span", { class: "title", text: task.title })),
        state.recent.get(taskKey(p.root, o.spec, t)), "recent");
      })));
  }

  function decisions(o) {
    if (!o.last_decisions.length) return null;
    const node = el("details", { class: "decisions", on: { toggle: (ev) => {
      if (ev.target.open) state.open.add(o.orchestration); else state.open.delete(o.orchestration);
    } } },
      el("summary", { text: `last decisions: ${o.last_decisions[o.last_decisions.length - 1].decision}` }),
      el("ol", {}, o.last_decisions.map((d) =>
        el("li", {}, el("time", { text: clock(d.at) }), " ", d.decision, d.reason ? ` (${d.reason})` : ""))));
    node.open = state.open.has(o.orchestration);
    return node;
  }

  function entry(root, e) {
    const tasks = (e.tasks || []).map((t) => `${t.task} ${t.status}`).join(", ");
    return since(el("li", { class: "entry", data: { commit: e.commit, kind: kind(e) } },
      el("time", { text: clock(e.time), title: e.time }),
      el("span", { class: "subject", text: e.subject, title: tasks }),
      e.spec ? el("a", { class: "spec", href: feedLink(root, e.spec), text: e.spec }) : null,
      evidence(root, e)), state.recent.get(`commit:${e.commit}`), "recent");
  }

  function evidence(root, e) {
    if (!e.evidence) return null;
    return SHA.test(e.evidence)
      ? el("a", { class: "evidence", href: commitLink(root, e.evidence), text: `evidence ${e.evidence.slice(0, 10)}` })
      : el("span", { class: "evidence", text: `evidence ${e.evidence}` });
  }

  function kind(e) {
    if (e.event) {
      if (/fail|attention|budget|cancel/.test(e.event)) return "bad";
      if (/completed|merged|passed/.test(e.event)) return "good";
      return "event";
    }
    return (e.tasks || []).some((t) => t.status === "done") ? "done" : "mark";
  }

  function timeline(p) {
    const end = serverNow();
    const shown = p.feed.filter((e) => end - Date.parse(e.time) <= TIMELINE_MS);
    const start = shown.length ? Math.min(Date.parse(shown[0].time), end - 60000) : end - 60000;
    const span = Math.max(1, end - start);
    return el("div", { class: "timeline", title: "the feed over time" },
      el("span", { class: "from", text: clock(new Date(start).toISOString()) }),
      el("div", { class: "track" }, shown.map((e) => since(el("span", {
        class: "tick", data: { kind: kind(e), commit: e.commit }, title: `${clock(e.time)} ${e.subject}`,
        style: { left: `${(((Date.parse(e.time) - start) / span) * 100).toFixed(2)}%` },
      }), state.recent.get(`commit:${e.commit}`), "recent"))),
      el("span", { class: "to", text: "now" }));
  }

  // ---- the side panel: a spec's feed, an evidence commit ------------------------------------

  function openFromHash() {
    const m = /^#(feed|commit)\/([^/]+)\/(.+)$/.exec(location.hash);
    if (!m) {
      state.panel = null;
      drawPanel();
      return;
    }
    const root = decodeURIComponent(m[2]);
    const name = decodeURIComponent(m[3]);
    const query = `?project=${encodeURIComponent(root)}`;
    if (m[1] === "feed") {
      state.panel = { kind: "feed", root, spec: name, entries: null, error: null };
      load(`/api/feed/${encodeURIComponent(name)}${query}`, state.panel, "entries");
    } else {
      state.panel = { kind: "commit", root, sha: name, commit: null, error: null };
      load(`/api/commits/${encodeURIComponent(name)}${query}`, state.panel, "commit");
    }
    drawPanel();
  }

  async function load(url, panel, slot) {
    try {
      const answer = await fetch(url, { headers: { Accept: "application/json" } });
      const data = await answer.json();
      if (!answer.ok) throw new Error(data.error || answer.statusText);
      panel[slot] = data;
    } catch (err) {
      panel.error = String(err.message || err);
    }
    if (state.panel === panel) drawPanel();
  }

  function drawPanel() {
    const aside = document.getElementById("panel");
    const panel = state.panel;
    aside.hidden = !panel;
    if (!panel) return;
    const title = document.getElementById("panel-title");
    const body = document.getElementById("panel-body");
    if (panel.kind === "feed") {
      title.textContent = visible(`feed of ${panel.spec}`);
      body.replaceChildren(panel.error ? el("p", { class: "error", text: panel.error })
        : !panel.entries ? el("p", { class: "quiet", text: "loading" })
        : el("ol", { class: "feed full" }, panel.entries.slice().reverse().map((e) => entry(panel.root, e))));
    } else {
      title.textContent = visible(`commit ${panel.sha.slice(0, 12)}`);
      const c = panel.commit;
      body.replaceChildren(panel.error ? el("p", { class: "error", text: panel.error })
        : !c ? el("p", { class: "quiet", text: "loading" })
        : el("div", { class: "commit" },
          el("p", {}, el("code", { text: c.commit })),
          el("p", { text: `${c.author}, ${new Date(c.time).toLocaleString()}` }),
          el("pre", { text: c.message }),
          el("table", { class: "files" }, c.files.map((f) =>
            el("tr", {}, el("td", { class: "added", text: `+${f.added}` }), el("td", { class: "deleted", text: `-${f.deleted}` }),
              el("td", { text: f.path }))))));
    }
  }

  // ---- events ------------------------------------------------------------------------------

  function projectOf(root) {
    return state.board && state.board.projects.find((p) => p.root === root);
  }

  const on = {
    snapshot(data) {
      state.board = data.board;
      state.offset = Date.now() - Date.parse(data.at);
      for (const a of data.board.agents) if (!state.arrived.has(a.id)) state.arrived.set(a.id, 0);
    },
    commit(data) {
      const p = projectOf(data.project);
      if (!p) return;
      const e = data.entry;
      p.feed.push(e);
      if (p.feed.length > 100) p.feed.shift();
      state.recent.set(`commit:${e.commit}`, Date.now());
      for (const t of e.tasks || []) {
        if (!e.spec) continue;
        state.recent.set(taskKey(p.root, e.spec, t.task), Date.now());
        // The mark shows at once; the orchestration's own event follows with the rest.
        for (const o of p.orchestrations) {
          const task = o.spec === e.spec && o.tasks[t.task];
          if (!task || !t.status) continue;
          o.tasks_done += FINISHED.has(t.status) - FINISHED.has(task.status);
          task.status = t.status;
        }
        for (const a of state.board.agents) {
          if (a.project !== p.root || a.spec !== e.spec) continue;
          for (const item of a.around) if (item.task === t.task && t.status) item.status = t.status;
        }
      }
      const panel = state.panel;
      if (panel && panel.kind === "feed" && panel.root === p.root && panel.spec === e.spec && panel.entries) {
        panel.entries.push(e);
        drawPanel();
      }
    },
    orchestration(data) {
      const p = projectOf(data.project);
      if (!p) return;
      const doc = data.orchestration;
      const at = p.orchestrations.findIndex((o) => o.orchestration === doc.orchestration);
      if (at >= 0) p.orchestrations[at] = doc;
      else p.orchestrations.push(doc);
      const agents = state.board.agents.filter((a) => !(a.project === p.root && a.orchestration === doc.orchestration));
      state.board.agents = agents.concat(data.agents);
    },
    removed(data) {
      const p = projectOf(data.project);
      if (!p) return;
      p.orchestrations = p.orchestrations.filter((o) => o.orchestration !== data.orchestration);
      state.board.agents = state.board.agents.filter((a) => !(a.project === p.root && a.orchestration === data.orchestration));
    },
    problems(data) {
      const p = projectOf(data.project);
      if (p) p.problems = data.problems;
    },
    feed(data) {
      const p = projectOf(data.project);
      if (p) p.feed = data.entries;
    },
  };

  function connect() {
    const live = document.getElementById("live");
    const stream = new EventSource("/events");
    stream.onopen = () => { live.dataset.state = "live"; live.textContent = "live"; };
    stream.onerror = () => {
      live.dataset.state = "reconnecting";
      live.textContent = "reconnecting";
      if (stream.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
    };
    for (const [name, apply] of Object.entries(on)) {
      stream.addEventListener(name, (ev) => {
        if (name !== "snapshot" && !state.board) return;
        apply(JSON.parse(ev.data));
        redraw();
      });
    }
  }

  // The clocks tick in the browser: the server sends nothing while nothing changes.
  function tick() {
    for (const node of document.querySelectorAll("[data-since]")) {
      node.textContent = duration((serverNow() - Date.parse(node.dataset.since)) / 1000);
    }
    for (const [key, at] of state.recent) if (Date.now() - at > RECENT_MS * 10) state.recent.delete(key);
  }

  document.getElementById("panel-close").addEventListener("click", (ev) => {
    ev.preventDefault();
    history.replaceState(null, "", location.pathname);
    openFromHash();
  });
  window.addEventListener("hashchange", openFromHash);
  setInterval(tick, 1000);
  openFromHash();
  connect();
})();
