// Logs tabs of the tools pane, one per instance: live follow with ANSI colours, pause/resume,
// search, download, and why it failed. Several can be open, and seen side by side.

import { AnsiUp } from "/static/vendor/ansi_up/ansi_up.js";
import { api } from "./api.js";
import { $, h } from "./dom.js";
import { failureOf, thisRun } from "./failure.js";
import { LiveStream } from "./live.js";
import { on, state } from "./state.js";
import { openTool, registerReopener } from "./workspace.js";

// The DOM keeps at most this many lines; the full log is one click away (Download).
const MAX_LINES = 5000;
const BACKFILL_LINES = 500;
// A browser keeps six HTTP/1.1 connections per host and the page's two streams hold two of them;
// more log streams than this would leave no connection for the page's own requests.
const MAX_STREAMS = 3;
const STOPPED = new Set(["stopped", "error"]);

const panels = new Map(); // instance id -> LogPanel

class LogPanel {
  constructor(id, root) {
    this.id = id;
    this.root = root;
    this.source = "instance";
    this.ansi = new AnsiUp();
    this.ansi.use_classes = true;
    this.paused = false;
    this.pending = [];
    this.partial = "";
    this.count = 0;
    this.output = this.el("output");
    this.stream = null;
    this.streamState = "connecting";
    this.shown = false;
    this.exitRender = 0;
  }

  /** One of the panel's own controls, by its class (logs-<name>). */
  el(name) {
    return $(`.logs-${name}`, this.root);
  }

  /** Follow while the tab can be seen (a hidden tab holds no connection); a reconnect replays the tail. */
  setShown(shown) {
    this.shown = shown;
    if (!shown) this.stop();
    balanceStreams();
  }

  get streaming() {
    return this.stream !== null && !this.stream.stopped;
  }

  start() {
    this.stop();
    const url = `/api/instances/${this.id}/logs/stream?tail=${BACKFILL_LINES}&source=${this.source}`;
    this.stream = new LiveStream(url, {
      // A reconnect replays the backfill, so the panel starts over instead of doubling lines.
      onOpen: () => this.reset(),
      onState: (s) => this.setState(s),
      handlers: {
        message: (data) => this.receive(data),
        log: (data) => this.receive(data),
        line: (data) => this.receive(data),
      },
    }).start();
  }

  stop() {
    this.stream?.stop();
    this.stream = null;
  }

  reset() {
    this.output.replaceChildren();
    this.pending = [];
    this.partial = "";
    this.count = 0;
    this.showState();
  }

  setState(s) {
    this.streamState = s;
    this.showState();
  }

  /** What the panel is doing, true to the instance: only a running one has live output to follow. */
  showState() {
    const inst = state.instances.get(this.id);
    let text;
    if (!inst) text = "This instance was deleted; its log went to the trash folder with it.";
    else if (this.paused) text = "Paused — new lines are kept and shown on resume";
    else if (!this.streaming) {
      text = this.shown
        ? `Not following: at most ${MAX_STREAMS} logs are followed at once; close one, or show fewer side by side.`
        : "Not following while its tab is hidden.";
    } else if (this.streamState !== "live") {
      text = this.streamState === "offline" ? "Disconnected; retrying…" : "Connecting…";
    } else if (!STOPPED.has(inst.status)) text = "Following live output";
    else if (this.count === 0 && this.pending.length === 0) {
      text = "No output yet: it appears here when the instance starts.";
    } else text = `Not running (${inst.status}); new output appears here when it starts.`;
    this.el("state").textContent = text;
  }

  /** One stream event: a JSON {line}/{text}/{lines} or plain text, possibly many lines. */
  receive(data) {
    let text;
    if (typeof data === "string") text = `${data}\n`;
    else if (Array.isArray(data?.lines)) text = data.lines.map((l) => `${l}\n`).join("");
    else if (typeof data?.line === "string") text = `${data.line}\n`;
    else if (typeof data?.text === "string") text = data.text;
    else if (typeof data?.data === "string") text = data.data;
    else return;
    const parts = (this.partial + text).split("\n");
    this.partial = parts.pop();
    if (parts.length === 0) return;
    if (this.paused) this.pending.push(...parts);
    else this.append(parts);
  }

  append(lines) {
    const follow = this.atBottom();
    const term = this.el("search").value.trim().toLowerCase();
    const fragment = document.createDocumentFragment();
    for (const line of lines) fragment.append(this.lineElement(line, term));
    this.output.append(fragment);
    this.count += lines.length;
    if (this.count === lines.length) this.showState();
    while (this.output.childElementCount > MAX_LINES) this.output.firstElementChild.remove();
    this.updateCount();
    if (follow) this.output.scrollTop = this.output.scrollHeight;
  }

  lineElement(line, term) {
    const el = document.createElement("span");
    el.className = "line";
    // ansi_up escapes HTML in the text and emits only spans with classes for the colours.
    el.innerHTML = this.ansi.ansi_to_html(line);
    el.dataset.text = el.textContent.toLowerCase();
    // The supervisor's "===== <time> start of … =====" separators mark each run.
    if (/^=====.*=====$/.test(el.dataset.text)) el.classList.add("sep");
    if (term) el.classList.toggle("hidden-by-search", !el.dataset.text.includes(term));
    return el;
  }

  atBottom() {
    const out = this.output;
    return out.scrollHeight - out.scrollTop - out.clientHeight < 40;
  }

  togglePause() {
    this.paused = !this.paused;
    const button = this.el("pause");
    button.textContent = this.paused ? "Resume" : "Pause";
    button.setAttribute("aria-pressed", String(this.paused));
    if (!this.paused && this.pending.length) {
      const lines = this.pending;
      this.pending = [];
      this.append(lines);
      this.output.scrollTop = this.output.scrollHeight;
    }
    this.showState();
  }

  search(term) {
    const needle = term.trim().toLowerCase();
    let shown = 0;
    for (const line of this.output.children) {
      const match = !needle || line.dataset.text.includes(needle);
      line.classList.toggle("hidden-by-search", !match);
      if (match) shown += 1;
    }
    this.updateCount(needle ? shown : null);
  }

  updateCount(matches = null) {
    const total = this.output.childElementCount;
    const needle = this.el("search").value.trim();
    if (needle && matches === null) {
      matches = [...this.output.children].filter((l) => !l.classList.contains("hidden-by-search")).length;
    }
    this.el("count").textContent = needle ? `${matches} of ${total} lines match` : `${total} lines`;
  }

  /** Show why an instance in error stopped: the reason with its exit code, and this run's last lines. */
  async renderExit() {
    const box = this.el("exit");
    const mine = ++this.exitRender;
    const inst = state.instances.get(this.id);
    if (!inst || inst.status !== "error") {
      box.hidden = true;
      return;
    }
    const { headline, cause, notes, lines: sent } = failureOf(inst);
    box.replaceChildren(h("strong", { text: headline }), notes ? h("span", { text: ` — ${notes}` }) : "");
    box.hidden = false;
    let lines = sent;
    if (lines.length === 0) {
      try {
        // Only this run's lines: an earlier run's last words would explain the wrong failure.
        const tail = await api.logs(this.id, 50);
        lines = thisRun(Array.isArray(tail?.lines) ? tail.lines : []).slice(-20);
      } catch {
        // The headline is shown already; the live log below has the lines as well.
      }
    }
    if (mine !== this.exitRender) return;
    if (lines.length) box.append(h("pre", { text: lines.join("\n") }));
    else if (cause) box.append(h("pre", { text: cause }));
  }

  renderHeader() {
    const inst = state.instances.get(this.id);
    if (!inst) {
      // Deleted: its log stream answers 404 from now on; retrying it would say "Disconnected" forever.
      this.stop();
      this.showState();
      this.el("status").textContent = "deleted";
      this.el("status").dataset.status = "deleted";
      return;
    }
    const badge = this.el("status");
    const before = badge.dataset.status;
    badge.textContent = inst.status;
    badge.dataset.status = inst.status;
    if (before !== inst.status) this.renderExit();
    this.showState();
  }

  /** Follow one of the instance's logs: its own ("instance") or its desktop session's. */
  follow(source) {
    this.source = source;
    this.reset();
    this.el("search").value = "";
    this.paused = false;
    this.el("pause").textContent = "Pause";
    this.el("pause").setAttribute("aria-pressed", "false");
    const query = source === "instance" ? "" : `?source=${source}`;
    this.el("download").href = `/api/instances/${this.id}/logs/download${query}`;
    if (this.streaming) this.start();
  }

  wire() {
    this.el("pause").addEventListener("click", () => this.togglePause());
    this.el("source").addEventListener("change", (event) => this.follow(event.target.value));
    this.el("search").addEventListener("input", (event) => this.search(event.target.value));
    const wrap = this.el("wrap");
    wrap.addEventListener("change", () => this.output.classList.toggle("wrap", wrap.checked));
    this.output.classList.toggle("wrap", wrap.checked);
  }
}

/** Start the streams of shown tabs, up to MAX_STREAMS; the others say why they wait. */
function balanceStreams() {
  let budget = MAX_STREAMS;
  for (const panel of panels.values()) {
    if (panel.shown && panel.streaming) budget -= 1;
  }
  for (const panel of panels.values()) {
    if (!panel.shown || panel.streaming) continue;
    if (!state.instances.has(panel.id)) continue;
    if (budget > 0) {
      budget -= 1;
      panel.start();
    } else {
      panel.showState();
    }
  }
}

/** Open (or select) the Logs tab of an instance in the tools pane. */
export function openLogs(id, { focus = true } = {}) {
  const inst = state.instances.get(id);
  if (!inst) return;
  if (panels.has(id)) {
    openTool({ key: `logs-${id}` });
    return;
  }
  const panel = new LogPanel(id, $("#logs-panel").content.firstElementChild.cloneNode(true));
  panels.set(id, panel);
  panel.wire();
  panel.el("source-label").hidden = !inst.persistent_mode;
  panel.follow("instance");
  openTool({
    key: `logs-${id}`,
    label: () => `Logs — ${state.instances.get(id)?.name ?? id}`,
    panel: panel.root,
    instanceId: id,
    // A deleted instance's log tab stays, saying so, until closed: its last lines may be wanted.
    closeWithInstance: false,
    persist: { kind: "logs", id },
    onVisible: (shown) => panel.setShown(shown),
    onClose: () => {
      panel.stop();
      panels.delete(id);
      balanceStreams();
    },
  });
  panel.renderHeader();
  if (focus && panel.shown) panel.output.focus();
}

export function setupLogs() {
  registerReopener("logs", (saved) => openLogs(saved.id, { focus: false }));
  on("instances", () => {
    for (const panel of panels.values()) panel.renderHeader();
  });
}
