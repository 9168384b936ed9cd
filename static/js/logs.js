// The logs panel: live follow with ANSI colours, pause/resume, search, download, and why it failed.

import { AnsiUp } from "/static/vendor/ansi_up/ansi_up.js";
import { api } from "./api.js";
import { $, h, openDialog } from "./dom.js";
import { LiveStream } from "./live.js";
import { on, state } from "./state.js";

// The DOM keeps at most this many lines; the full log is one click away (Download).
const MAX_LINES = 5000;
const BACKFILL_LINES = 500;
const STOPPED = new Set(["stopped", "error"]);

let panel = null;

class LogPanel {
  constructor(id, source) {
    this.id = id;
    this.source = source;
    this.ansi = new AnsiUp();
    this.ansi.use_classes = true;
    this.paused = false;
    this.pending = [];
    this.partial = "";
    this.count = 0;
    this.output = $("#logs-output");
    this.output.replaceChildren();
    this.stream = null;
    this.streamState = "connecting";
  }

  start() {
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
    else if (this.streamState !== "live") {
      text = this.streamState === "offline" ? "Disconnected; retrying…" : "Connecting…";
    } else if (!STOPPED.has(inst.status)) text = "Following live output";
    else if (this.count === 0 && this.pending.length === 0) {
      text = "No output yet: it appears here when the instance starts.";
    } else text = `Not running (${inst.status}); new output appears here when it starts.`;
    $("#logs-state").textContent = text;
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
    const term = $("#logs-search").value.trim().toLowerCase();
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
    const button = $("#logs-pause");
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
    const needle = $("#logs-search").value.trim();
    if (needle && matches === null) {
      matches = [...this.output.children].filter((l) => !l.classList.contains("hidden-by-search")).length;
    }
    $("#logs-count").textContent = needle ? `${matches} of ${total} lines match` : `${total} lines`;
  }
}

/** Show why an instance in error stopped: exit code, message and its last lines. */
let exitRender = 0;

async function renderExit(id) {
  const box = $("#logs-exit");
  const mine = ++exitRender;
  const inst = state.instances.get(id);
  if (!inst || inst.status !== "error") {
    box.hidden = true;
    return;
  }
  const code = inst.exit_code === null || inst.exit_code === undefined ? "unknown" : inst.exit_code;
  // The supervisor's message is one reason line, then "last log lines:" and those lines.
  const [reason, ...rest] = (inst.status_message || "").split("\n");
  box.replaceChildren(
    h("strong", { text: `Exited with code ${code}` }),
    reason && !/^exited with code/i.test(reason) ? h("span", { text: ` — ${reason}` }) : "",
  );
  box.hidden = false;
  let lines = rest[0]?.startsWith("last log lines") ? rest.slice(1) : [];
  if (lines.length === 0) {
    try {
      const tail = await api.logs(id, 20);
      lines = Array.isArray(tail?.lines) ? tail.lines : [];
    } catch {
      // The exit code is shown already; the live log below has the lines as well.
    }
  }
  if (lines.length && mine === exitRender) box.append(h("pre", { text: lines.join("\n").trim().replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "") }));
}

function renderHeader(id) {
  const inst = state.instances.get(id);
  if (!inst) return;
  $("#logs-title").textContent = `Logs — ${inst.name}`;
  const badge = $("#logs-status");
  badge.textContent = inst.status;
  badge.dataset.status = inst.status;
}

/** Follow one of the instance's logs: its own ("instance") or its desktop session's. */
function follow(id, source) {
  panel?.stop();
  panel = new LogPanel(id, source);
  $("#logs-search").value = "";
  $("#logs-pause").textContent = "Pause";
  $("#logs-pause").setAttribute("aria-pressed", "false");
  const query = source === "instance" ? "" : `?source=${source}`;
  $("#logs-download").href = `/api/instances/${id}/logs/download${query}`;
  panel.start();
}

export function openLogs(id) {
  const inst = state.instances.get(id);
  $("#logs-source").value = "instance";
  $("#logs-source-label").hidden = !inst?.persistent_mode;
  follow(id, "instance");
  renderHeader(id);
  renderExit(id);
  openDialog($("#logs-dialog"), {
    onClose: () => {
      panel?.stop();
      panel = null;
    },
  });
  $("#logs-output").focus();
}

export function setupLogs() {
  $("#logs-pause").addEventListener("click", () => panel?.togglePause());
  $("#logs-source").addEventListener("change", (event) => {
    if (panel) follow(panel.id, event.target.value);
  });
  $("#logs-search").addEventListener("input", (event) => panel?.search(event.target.value));
  $("#logs-wrap").addEventListener("change", (event) => {
    $("#logs-output").classList.toggle("wrap", event.target.checked);
  });
  $("#logs-output").classList.toggle("wrap", $("#logs-wrap").checked);
  on("instances", (id) => {
    if (!panel || (id !== null && id !== panel.id)) return;
    if (!state.instances.has(panel.id)) {
      // Deleted: its log stream answers 404 from now on; retrying it would say "Disconnected" forever.
      panel.stop();
      panel.showState();
      $("#logs-status").textContent = "deleted";
      $("#logs-status").dataset.status = "deleted";
      return;
    }
    panel.showState();
    const before = $("#logs-status").dataset.status;
    renderHeader(panel.id);
    if (before !== state.instances.get(panel.id)?.status) renderExit(panel.id);
  });
}
