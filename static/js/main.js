// Dashboard entry point: views by URL hash, initial load, and the two live streams.

import { api, onUnauthorized } from "./api.js";
import { setupBlueprints } from "./blueprints.js";
import { copyEvents, setupCopies } from "./copies.js";
import { setupDesktop } from "./desktop.js";
import { $, $$ } from "./dom.js";
import { setupEditor } from "./editor.js";
import { openFiles, setupFiles } from "./files.js";
import { renderAll, setInstancesOffline, setupInstances } from "./instances.js";
import { LiveStream } from "./live.js";
import { setupLogs } from "./logs.js";
import { modelEvents, resyncModels, setupModels, showModels } from "./models.js";
import { setupOutputs } from "./outputs.js";
import { setupSettings } from "./settings.js";
import { removeInstance, setBlueprints, setInstances, setStats, upsertInstance } from "./state.js";
import { setupStrip } from "./strip.js";
import { loadHistory, setupSystem, showSystem } from "./system.js";
import { setupTerminal } from "./terminal.js";
import { setupVersions, setupVersionsDialog } from "./versions.js";
import { setupWorkspace, showView } from "./workspace.js";

const VIEWS = ["instances", "system", "models"];
const TITLES = { instances: "Instances", system: "System", models: "Models" };
const streamStates = { events: "connecting", stats: "connecting" };
const streams = [];
// The session cookie is shared by every tab of this browser, their streams are not: a logout in
// one tab tells the others at once, so none keeps showing "Live" with a session that has ended.
const sessionChannel = "BroadcastChannel" in window ? new BroadcastChannel("aikore-session") : null;
let sessionEnded = false;
let loggingOut = false;

function route() {
  const wanted = location.hash.replace(/^#\/?/, "");
  const view = VIEWS.includes(wanted) ? wanted : "instances";
  for (const section of $$("[data-view]")) section.hidden = section.dataset.view !== view;
  for (const link of $$("[data-view-link]")) {
    if (link.dataset.viewLink === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${TITLES[view]} · AiKore`;
  showView(TITLES[view]);
  showSystem(view === "system");
  showModels(view === "models");
}

function banner(message, link) {
  const el = $("#banner");
  el.replaceChildren(message, link ? " " : "", link ?? "");
  el.hidden = !message;
}

/** One indicator for both streams: live only when both are. */
function setStreamState(name, value) {
  streamStates[name] = value;
  const states = Object.values(streamStates);
  const overall = states.includes("offline") ? "offline" : states.every((s) => s === "live") ? "live" : "connecting";
  const el = $("#live-status");
  el.dataset.state = overall;
  $(".live-text", el).textContent = { live: "Live", connecting: "Connecting…", offline: "Reconnecting…" }[overall];
  // Offline is the events stream failing (AiKore gone or unreachable); back once it is live again.
  if (name === "events" && value === "offline") setConnection(false);
  if (name === "events" && value === "live") setConnection(true);
}

let offline = false;

/** A clear banner and no actions while AiKore is away; what failed meanwhile is cleared on return. */
function setConnection(online) {
  if (online !== offline) return;
  offline = !online;
  $("#offline-banner").hidden = online;
  document.body.classList.toggle("offline", offline);
  setInstancesOffline(offline);
  if (online) banner("");
}

async function loadInstances() {
  try {
    setInstances(await api.instances());
    banner("");
  } catch (err) {
    banner(`Could not load instances: ${err.message}`);
  }
}

async function loadBlueprints() {
  try {
    setBlueprints(await api.blueprints());
    renderAll();
  } catch (err) {
    banner(`Could not load blueprints: ${err.message}`);
  }
}

// A browser keeps at most six HTTP/1.1 connections per host; streams of tabs left in the
// background would soon use them all, so a tab hidden for a while lets its streams go.
const HIDDEN_GRACE_MS = 30_000;

function startStreams() {
  streams.push(
    new LiveStream("/api/events", {
      onState: (s) => {
        setStreamState("events", s);
        // A stream cannot say why it failed; one plain request per retry (backed off) tells an
        // ended session, which then shows the log-in banner, from AiKore being away.
        if (s === "offline") api.instances().catch(() => {});
      },
      handlers: {
        // Every (re)connect starts with the whole list, so whatever changed meanwhile is caught up.
        snapshot: (data) => {
          setInstances(data.instances);
          resyncModels();
        },
        instance: (data) => upsertInstance(data),
        instance_deleted: (data) => removeInstance(data.id),
        // The server ends the stream of a session logged out anywhere (another browser window too).
        session_ended: () => loggingOut || endSession("logged-out-elsewhere"),
        ...modelEvents,
        ...copyEvents,
      },
    }),
    new LiveStream("/api/system/stream", {
      onState: (s) => setStreamState("stats", s),
      handlers: { stats: (sample) => setStats(sample) },
    }),
  );
  streams.forEach((stream) => stream.start());
  let idle = null;
  document.addEventListener("visibilitychange", () => {
    clearTimeout(idle);
    if (document.hidden) {
      idle = setTimeout(() => streams.forEach((stream) => stream.stop()), HIDDEN_GRACE_MS);
    } else if (streams.some((stream) => stream.stopped)) {
      streams.forEach((stream) => stream.start());
    }
  });
}

/** The session is over (logged out here or in another tab, or expired): stop and show the login. */
function endSession(reason) {
  if (sessionEnded) return;
  sessionEnded = true;
  streams.forEach((stream) => stream.stop());
  const next = location.pathname + location.hash;
  location.replace(`/login?${new URLSearchParams({ next, reason })}`);
}

/** Log out through the API so the other tabs are told only once the session really has ended. */
async function logout(event) {
  event.preventDefault();
  // This tab's own streams would hear the logout as one from elsewhere.
  loggingOut = true;
  streams.forEach((stream) => stream.stop());
  try {
    await api.logout();
  } catch {
    event.target.submit(); // the plain form still logs out, without telling the other tabs
    return;
  }
  sessionChannel?.postMessage("logged-out");
  endSession("logged-out");
}

function watchSession() {
  onUnauthorized(() => loggingOut || endSession("ended"));
  sessionChannel?.addEventListener("message", (event) => {
    if (event.data === "logged-out" && !loggingOut) endSession("logged-out-elsewhere");
  });
  $(".logout-form")?.addEventListener("submit", logout);
}

function init() {
  watchSession();
  setupWorkspace();
  setupStrip();
  setupInstances();
  setupCopies();
  setupBlueprints();
  setupVersions();
  setupVersionsDialog();
  setupSettings();
  setupLogs();
  setupEditor();
  setupDesktop();
  setupSystem();
  setupModels();
  setupTerminal();
  setupFiles();
  setupOutputs();
  $("#models-files").addEventListener("click", () => openFiles("models"));
  window.addEventListener("hashchange", route);
  route();
  // The events stream's snapshot brings the list too; this plain read shows it even where a
  // buffering reverse proxy holds the stream back.
  loadInstances();
  loadBlueprints();
  api.stats().then(setStats, () => {});
  loadHistory();
  startStreams();
}

init();
