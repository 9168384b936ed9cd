// The workspace: the page's views in one pane, a tools pane of tabs (logs, script editors,
// terminal, files, desktops) beside or below it, a splitter between them, and what the browser
// remembers of all that (localStorage). On a phone the two panes are full-screen views.

import { $, $$, h } from "./dom.js";
import { on, state } from "./state.js";

const STORE_KEY = "aikore.workspace";
// The tools pane's share of the workspace, in percent; neither pane is ever squeezed to nothing.
const MIN_SIZE = 15;
const MAX_SIZE = 85;
const KEY_STEP = 5;
const DEFAULTS = { layout: "rows", size: 45, arrange: "tabs", tabs: [], active: null };
const phone = window.matchMedia("(max-width: 720px)");

const tools = new Map(); // key -> tool (see openTool)
const reopeners = new Map(); // kind -> function(saved entry) that opens that tool again
let prefs = readPrefs();
let selected = null;
let restoring = false;
let restored = false;
// A browser tab left in the background lets its log streams go, as main.js does its own.
const AWAY_GRACE_MS = 30_000;
let away = false;

/** What was saved, each part checked: anything unexpected (older, or edited by hand) is the default. */
function readPrefs() {
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(STORE_KEY));
  } catch {
    // Unreadable: the defaults.
  }
  if (!saved || typeof saved !== "object") return { ...DEFAULTS };
  const size = Number(saved.size);
  return {
    layout: ["rows", "columns"].includes(saved.layout) ? saved.layout : DEFAULTS.layout,
    arrange: ["tabs", "side"].includes(saved.arrange) ? saved.arrange : DEFAULTS.arrange,
    size: Number.isFinite(size) ? Math.min(MAX_SIZE, Math.max(MIN_SIZE, size)) : DEFAULTS.size,
    tabs: Array.isArray(saved.tabs) ? saved.tabs.filter((tab) => tab && typeof tab.kind === "string") : [],
    active: typeof saved.active === "string" ? saved.active : null,
  };
}

function savePrefs() {
  // Until the remembered tabs are back (instances known), saving would forget them.
  if (restoring || !restored) return;
  prefs.tabs = [...tools.values()].filter((tool) => tool.persist).map((tool) => tool.persist);
  prefs.active = selected?.persist ? selected.key : null;
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(prefs));
  } catch {
    // Private mode or a full quota: the layout is simply not remembered.
  }
}

const workspace = () => $("#workspace");

/**
 * Open a tool as a tab of the tools pane, or select it when `key` is open already.
 * `panel` is its content; `label()` names the tab (called again when instances change);
 * `instanceId` ties it to an instance: its tab closes when that instance is deleted, unless
 * `closeWithInstance` is false; `persist` ({kind, ...}) is remembered, so a reload opens it again
 * through that kind's reopener (registerReopener); `keep` marks a panel that belongs to the page;
 * `focusTab` puts the keyboard on its new tab (for tools that focus nothing of their own);
 * `onVisible(shown)` tells it when it can be seen; `canClose()` may refuse; `onClose()` ends it.
 * When `key` is open, its label, instance and persist are updated from `spec` where given.
 * Returns the tool and whether it was just created.
 */
export function openTool(spec) {
  const existing = tools.get(spec.key);
  if (existing) {
    for (const field of ["label", "instanceId", "persist"]) {
      if (field in spec) existing[field] = spec[field];
    }
    relabel(existing);
    selectTool(existing, { focus: true });
    return { tool: existing, created: false };
  }
  const id = `tool-${spec.key.replace(/[^a-z0-9-]/gi, "-")}`;
  const tool = { onVisible: () => {}, onClose: () => {}, canClose: () => true, instanceId: null,
    closeWithInstance: true, persist: null, keep: false, ...spec, visible: false };
  tool.tab = h("button", {
    type: "button", role: "tab", class: "tool-tab", id: `${id}-tab`, "aria-controls": id,
    "aria-selected": "false", tabindex: "-1", onclick: () => selectTool(tool, { focus: true }),
  });
  tool.closer = h("button", {
    type: "button", class: "btn btn-icon btn-tiny tool-close", tabindex: "-1", text: "✕",
    title: "Close (Delete)", onclick: () => closeTool(tool.key),
  });
  tool.item = h("div", { class: "tool-item", role: "presentation", "data-tool": spec.key }, tool.tab, tool.closer);
  $("#tools-tabs").append(tool.item);
  tool.panel.id = id;
  tool.panel.classList.add("tool-panel");
  tool.panel.setAttribute("role", "tabpanel");
  tool.panel.setAttribute("aria-labelledby", tool.tab.id);
  tool.panel.dataset.tool = spec.key;
  if (!tool.panel.isConnected) $("#tools-panels").append(tool.panel);
  tools.set(tool.key, tool);
  relabel(tool);
  selectTool(tool, { focus: Boolean(spec.focusTab) && !restoring, reveal: !restoring });
  return { tool, created: true };
}

/** The open tool of that key, or null. */
export function findTool(key) {
  return tools.get(key) ?? null;
}

/** Close a tool's tab (it may refuse, e.g. unsaved changes, unless forced); its stream ends with it. */
export function closeTool(key, { force = false } = {}) {
  const tool = tools.get(key);
  if (!tool || (!force && !tool.canClose())) return false;
  const order = [...tools.keys()];
  const index = order.indexOf(key);
  setVisible(tool, false);
  tools.delete(key);
  tool.item.remove();
  tool.onClose();
  // The terminal's and files' panels are part of the page and kept; the others were made for the tab.
  if (tool.keep) tool.panel.hidden = true;
  else tool.panel.remove();
  if (selected === tool) {
    selected = null;
    const next = tools.get(order[index + 1]) ?? tools.get(order[index - 1]);
    if (next) selectTool(next, { focus: document.activeElement === document.body });
  }
  refresh();
  return true;
}

function selectTool(tool, { focus, reveal = focus }) {
  selected = tool;
  for (const other of tools.values()) {
    const isSelected = other === tool;
    other.tab.setAttribute("aria-selected", String(isSelected));
    other.tab.tabIndex = isSelected ? 0 : -1;
    other.item.classList.toggle("selected", isSelected);
  }
  if (reveal) showPane("tools");
  refresh();
  if (focus) tool.tab.focus();
}

function relabel(tool) {
  const text = tool.label();
  tool.tab.textContent = text;
  // A long instance name is cut short in the tab; the whole of it shows on hover.
  tool.tab.title = text;
  tool.closer.setAttribute("aria-label", `Close ${text}`);
}

function setVisible(tool, shown) {
  if (tool.visible === shown) return;
  tool.visible = shown;
  tool.onVisible(shown);
}

/** Show the panes and panels the current state calls for, tell tools whether they are seen, save. */
function refresh() {
  const ws = workspace();
  const count = tools.size;
  const shape = `${count ? "open" : "empty"} ${prefs.layout}`;
  // The views' pane changes size without the window doing so: charts and terminals measure again.
  const reshaped = ws.dataset.shape !== undefined && ws.dataset.shape !== shape;
  ws.dataset.shape = shape;
  ws.dataset.tools = count ? "open" : "empty";
  ws.dataset.layout = prefs.layout;
  // A phone shows one tab at a time: side by side, each would be a sliver.
  const side = prefs.arrange === "side" && !phone.matches;
  ws.dataset.arrange = side ? "side" : "tabs";
  ws.style.setProperty("--tools-size", `${prefs.size}%`);
  $("#tools-count").textContent = count ? String(count) : "";
  const paneShown = count > 0 && !away && (!phone.matches || ws.dataset.pane === "tools");
  for (const tool of tools.values()) {
    const panelShown = side || tool === selected;
    tool.panel.hidden = !panelShown;
    tool.panel.classList.toggle("selected", tool === selected);
    setVisible(tool, paneShown && panelShown);
  }
  updateSplitter();
  updateToggles();
  savePrefs();
  if (reshaped) window.dispatchEvent(new Event("resize"));
}

function updateToggles() {
  const beside = prefs.layout === "columns";
  const layout = $("#tools-layout");
  layout.textContent = beside ? "Below" : "Beside";
  layout.setAttribute("aria-label", beside ? "Put the tools below the page" : "Put the tools beside the page");
  const arrange = $("#tools-arrange");
  arrange.setAttribute("aria-pressed", String(prefs.arrange === "side"));
}

// ---- The splitter: drag it, or focus it and use the arrow keys, Home and End ----

function setSize(size) {
  prefs.size = Math.round(Math.min(MAX_SIZE, Math.max(MIN_SIZE, size)) * 10) / 10;
  workspace().style.setProperty("--tools-size", `${prefs.size}%`);
  updateSplitter();
}

function updateSplitter() {
  const bar = $("#splitter");
  const rows = prefs.layout === "rows";
  // The separator's value is the first pane's (the page's) share, as ARIA's window splitter has it.
  bar.setAttribute("aria-orientation", rows ? "horizontal" : "vertical");
  bar.setAttribute("aria-valuenow", String(Math.round(100 - prefs.size)));
  bar.setAttribute("aria-valuetext", `page ${Math.round(100 - prefs.size)}%, tools ${Math.round(prefs.size)}%`);
}

function setupSplitter() {
  const bar = $("#splitter");
  bar.setAttribute("aria-valuemin", String(100 - MAX_SIZE));
  bar.setAttribute("aria-valuemax", String(100 - MIN_SIZE));
  bar.addEventListener("pointerdown", (event) => {
    if (event.button !== 0) return;
    event.preventDefault();
    bar.setPointerCapture(event.pointerId);
    workspace().classList.add("resizing");
  });
  bar.addEventListener("pointermove", (event) => {
    if (!bar.hasPointerCapture(event.pointerId)) return;
    const box = workspace().getBoundingClientRect();
    setSize(prefs.layout === "rows"
      ? (100 * (box.bottom - event.clientY)) / box.height
      : (100 * (box.right - event.clientX)) / box.width);
  });
  bar.addEventListener("lostpointercapture", () => {
    workspace().classList.remove("resizing");
    savePrefs();
    window.dispatchEvent(new Event("resize"));
  });
  bar.addEventListener("keydown", (event) => {
    // Up/Left move the splitter towards the page: the tools grow.
    const moves = { ArrowUp: KEY_STEP, ArrowLeft: KEY_STEP, ArrowDown: -KEY_STEP, ArrowRight: -KEY_STEP,
      Home: MAX_SIZE - prefs.size, End: MIN_SIZE - prefs.size };
    if (!(event.key in moves)) return;
    event.preventDefault();
    setSize(prefs.size + moves[event.key]);
    savePrefs();
    window.dispatchEvent(new Event("resize"));
  });
}

// ---- Tabs by keyboard: arrows move between them, Home/End, Delete closes ----

function onTabKey(event) {
  const tab = event.target.closest("[role='tab']");
  if (!tab) return;
  const list = [...tools.values()];
  const index = list.findIndex((tool) => tool.tab === tab);
  if (index < 0) return;
  const targets = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: list.length - 1 };
  if (event.key in targets) {
    event.preventDefault();
    const target = list[(targets[event.key] + list.length) % list.length];
    selectTool(target, { focus: true });
  } else if (event.key === "Delete") {
    event.preventDefault();
    closeTool(list[index].key);
  }
}

// ---- F6 moves the keyboard between the panes, as in a desktop application's windows ----

function onPaneKey(event) {
  if (event.key !== "F6" || event.defaultPrevented || !selected) return;
  event.preventDefault();
  if ($("#tools").contains(document.activeElement)) {
    showPane("main");
    $("#main").focus();
  } else {
    selectTool(selected, { focus: true });
  }
}

// ---- Phone: one pane at a time ----

function showPane(pane) {
  const ws = workspace();
  if (ws.dataset.pane === pane) return;
  ws.dataset.pane = pane;
  for (const button of $$("#pane-switch [data-pane]")) {
    button.setAttribute("aria-pressed", String(button.dataset.pane === pane));
  }
  refresh();
  if (phone.matches) window.scrollTo(0, 0);
}

/** A view was chosen (Instances, System, Models): on a phone, it is what the screen shows. */
export function showView(title) {
  $("#pane-main-name").textContent = title;
  showPane("main");
}

// ---- Remembered tabs ----

/** How a remembered tool of `kind` is opened again after a reload (e.g. logs: openLogs(saved.id)). */
export function registerReopener(kind, reopen) {
  reopeners.set(kind, reopen);
}

/** Open the tools remembered from the last visit whose instances still exist (once instances are known). */
function restore() {
  restored = true;
  const { tabs, active } = prefs;
  restoring = true;
  try {
    for (const saved of tabs) {
      if (saved.id !== undefined && !state.instances.has(saved.id)) continue;
      try {
        reopeners.get(saved.kind)?.(saved);
      } catch {
        // One tool that cannot come back does not keep the others away.
      }
    }
    const again = active && tools.get(active);
    if (again) selectTool(again, { focus: false });
  } finally {
    restoring = false;
  }
  savePrefs();
}

function onInstances() {
  if (!restored) restore();
  for (const tool of [...tools.values()]) {
    const gone = tool.instanceId !== null && !state.instances.has(tool.instanceId);
    if (gone && tool.closeWithInstance) closeTool(tool.key, { force: true });
    else if (!gone) relabel(tool);
  }
}

export function setupWorkspace() {
  setupSplitter();
  $("#tools-tabs").addEventListener("keydown", onTabKey);
  document.addEventListener("keydown", onPaneKey);
  $("#tools-layout").addEventListener("click", () => {
    prefs.layout = prefs.layout === "rows" ? "columns" : "rows";
    refresh();
  });
  $("#tools-arrange").addEventListener("click", () => {
    prefs.arrange = prefs.arrange === "side" ? "tabs" : "side";
    refresh();
    window.dispatchEvent(new Event("resize"));
  });
  for (const button of $$("#pane-switch [data-pane]")) {
    button.addEventListener("click", () => showPane(button.dataset.pane));
  }
  phone.addEventListener("change", refresh);
  let awayTimer = null;
  document.addEventListener("visibilitychange", () => {
    clearTimeout(awayTimer);
    if (document.hidden) {
      awayTimer = setTimeout(() => { away = true; refresh(); }, AWAY_GRACE_MS);
    } else if (away) {
      away = false;
      refresh();
    }
  });
  on("instances", onInstances);
  workspace().dataset.pane = "main";
  refresh();
}
