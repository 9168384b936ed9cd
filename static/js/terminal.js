// Web terminals: xterm.js on a websocket to a PTY, several tabs at once, resize, copy/paste, kept sessions.

import { Terminal } from "/static/vendor/xterm/xterm.mjs";
import { request } from "./api.js";
import { $, h } from "./dom.js";
import { state } from "./state.js";
import { openTool } from "./workspace.js";

const tabs = []; // { id, title, term, ws, host, tab, session, keep }
let active = null;
let context = null; // { instanceId, title }
const encoder = new TextEncoder();

function socketUrl(instanceId, params) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const path = instanceId === null ? "/api/terminal" : `/api/instances/${instanceId}/terminal`;
  return `${scheme}//${location.host}${path}?${new URLSearchParams(params)}`;
}

/** The terminal's size in cells for its host element, measured from xterm's own rendered screen. */
function fit(entry) {
  const screen = entry.host.querySelector(".xterm-screen");
  if (!screen || !entry.host.clientWidth || !entry.host.clientHeight) return;
  const cellWidth = screen.getBoundingClientRect().width / entry.term.cols;
  const cellHeight = screen.getBoundingClientRect().height / entry.term.rows;
  if (!cellWidth || !cellHeight) return;
  const cols = Math.max(20, Math.floor((entry.host.clientWidth - 14) / cellWidth));
  const rows = Math.max(5, Math.floor((entry.host.clientHeight - 4) / cellHeight));
  if (cols !== entry.term.cols || rows !== entry.term.rows) entry.term.resize(cols, rows);
}

function send(entry, message) {
  // Bytes are the terminal's input; objects are control messages.
  if (entry.ws.readyState === WebSocket.OPEN) entry.ws.send(message instanceof Uint8Array ? message : JSON.stringify(message));
}

function keyHandler(entry) {
  return (event) => {
    if (event.type !== "keydown") return true;
    // F6 is the page's, not the shell's: the one key that leaves a terminal for the other pane.
    if (event.key === "F6") return false;
    const mod = event.ctrlKey && event.shiftKey;
    if (mod && event.code === "KeyC") {
      navigator.clipboard?.writeText(entry.term.getSelection()).catch(() => {});
      return false;
    }
    if (mod && event.code === "KeyV") {
      paste(entry);
      return false;
    }
    return true;
  };
}

async function paste(entry) {
  try {
    const text = await navigator.clipboard.readText();
    if (text) entry.term.paste(text);
  } catch {
    entry.term.write("\r\n\x1b[33m[paste: the browser did not allow reading the clipboard; use Ctrl+V]\x1b[0m\r\n");
  }
}

function select(entry) {
  active = entry;
  for (const other of tabs) {
    other.host.hidden = other !== entry;
    other.tab.setAttribute("aria-selected", String(other === entry));
  }
  $("#terminal-keep").checked = entry.keep;
  requestAnimationFrame(() => {
    fit(entry);
    entry.term.focus();
  });
}

function closeTab(entry) {
  entry.ws.close();
  entry.term.dispose();
  entry.host.remove();
  entry.tab.remove();
  tabs.splice(tabs.indexOf(entry), 1);
  if (active === entry) {
    active = null;
    if (tabs.length) select(tabs[tabs.length - 1]);
  }
  refreshDetached();
}

function openTab({ instanceId, title, session = null, keep = false }) {
  const host = h("div", { class: "terminal-host" });
  $("#terminal-panes").append(host);
  const term = new Terminal({
    cursorBlink: true,
    fontSize: window.innerWidth < 640 ? 12 : 14,
    fontFamily: "ui-monospace, SFMono-Regular, Menlo, Consolas, monospace",
    scrollback: 5000,
    theme: { background: "#0d1117" },
  });
  term.open(host);
  const params = session ? { session } : { cols: term.cols, rows: term.rows, keep: keep ? "1" : "0" };
  const ws = new WebSocket(socketUrl(instanceId, params));
  ws.binaryType = "arraybuffer";
  const label = h("span", { text: title });
  const closer = h("button", { type: "button", class: "btn btn-icon btn-tiny", "aria-label": `Close ${title}`, text: "✕" });
  const tab = h("div", { class: "terminal-tab", role: "tab", tabindex: "0", "aria-selected": "false" }, label, closer);
  $("#terminal-tabs").append(tab);
  const entry = { instanceId, title, term, ws, host, tab, session, keep };
  tabs.push(entry);
  term.attachCustomKeyEventHandler(keyHandler(entry));
  term.onData((data) => send(entry, encoder.encode(data)));
  term.onResize(({ cols, rows }) => send(entry, { type: "resize", cols, rows }));
  ws.onopen = () => fit(entry);
  ws.onmessage = (event) => {
    if (typeof event.data !== "string") {
      term.write(new Uint8Array(event.data));
      return;
    }
    const message = JSON.parse(event.data);
    if (message.type === "session") {
      entry.session = message.id;
      tab.dataset.session = message.id;
    } else if (message.type === "exit") {
      term.write(`\r\n\x1b[2m[the shell ended${message.code === null ? "" : ` with code ${message.code}`}]\x1b[0m\r\n`);
    }
  };
  ws.onclose = () => {
    tab.classList.add("ended");
    label.textContent = `${title} (closed)`;
  };
  tab.addEventListener("click", (event) => {
    if (event.target === closer) closeTab(entry);
    else select(entry);
  });
  new ResizeObserver(() => { if (!host.hidden) fit(entry); }).observe(host);
  select(entry);
  return entry;
}

async function refreshDetached() {
  const list = $("#terminal-detached");
  let sessions = [];
  try {
    sessions = await request("GET", "/api/terminals");
  } catch {
    return;
  }
  const mine = sessions.filter((s) => !s.attached && s.instance_id === context?.instanceId);
  list.replaceChildren(...mine.map((s) => h("button", {
    type: "button",
    class: "btn btn-small",
    text: `Reattach ${s.title} (${new Date(s.created * 1000).toLocaleTimeString()})`,
    onclick: () => {
      openTab({ instanceId: s.instance_id, title: s.title, session: s.id, keep: true });
      refreshDetached();
    },
  })));
  list.hidden = !mine.length;
}

/** Open a new shell in the Terminal tab: an instance's (by id) or AiKore's own (null). */
export function openTerminal(instanceId) {
  const inst = instanceId === null ? null : state.instances.get(instanceId);
  if (instanceId !== null && !inst) return;
  const title = inst ? inst.name : "aikore";
  context = { instanceId, title };
  openTool({
    key: "terminal",
    label: () => "Terminal",
    panel: $("#terminal-panel"),
    keep: true,
    onVisible: (shown) => { if (shown && active) requestAnimationFrame(() => fit(active)); },
    onClose: () => {
      // Closing the tab closes every shell's socket: shells end unless kept.
      while (tabs.length) closeTab(tabs[0]);
      context = null;
    },
  });
  openTab({ instanceId, title });
  refreshDetached();
}

export function setupTerminal() {
  $("#terminal-new").addEventListener("click", () => {
    if (context) openTab({ ...context });
  });
  $("#terminal-keep").addEventListener("change", (event) => {
    if (!active) return;
    active.keep = event.target.checked;
    send(active, { type: "keep", keep: active.keep });
  });
  $("#terminal-copy").addEventListener("click", () => {
    if (active) navigator.clipboard?.writeText(active.term.getSelection()).catch(() => {});
  });
  $("#terminal-paste").addEventListener("click", () => { if (active) paste(active); });
  $("#aikore-shell").addEventListener("click", () => openTerminal(null));
  // Keys typed into a shell belong to it (Delete, arrows), not to the page around it.
  $("#terminal-panes").addEventListener("keydown", (event) => {
    if (event.key !== "F6") event.stopPropagation();
  });
}
