// App versions: a badge in each row (the app's tag, "vX available"), and the Versions dialog with
// Update (snapshot first) and Roll back. Each instance's version is asked once, and again when it
// settles (running, stopped, error): an update or rollback changes it only through a restart.

import { api } from "./api.js";
import { $, busy, confirmAction, h, openDialog, showError, toast } from "./dom.js";
import { on, state } from "./state.js";

const SETTLED = new Set(["running", "stopped", "error"]);
const versions = new Map(); // instance id -> the API's Version, once loaded
const settledAs = new Map(); // instance id -> the settled status its version was asked in
let shownId = null;

export function setupVersions() {
  on("instances", refresh);
}

function refresh() {
  for (const inst of state.instances.values()) {
    const settled = SETTLED.has(inst.status) ? inst.status : null;
    if (settled && settledAs.get(inst.id) !== settled) {
      settledAs.set(inst.id, settled);
      load(inst.id);
    } else {
      renderBadge(inst.id);
    }
  }
  if (shownId !== null && versions.has(shownId)) renderDialog();
}

async function load(id, refreshReleases = false) {
  try {
    versions.set(id, await api.version(id, refreshReleases));
  } catch {
    versions.delete(id); // a deleted instance, or AiKore away: the badge stays empty
  }
  renderBadge(id);
  if (shownId === id) renderDialog();
}

function short(version) {
  const app = version.app;
  if (app) return app.tag ?? app.commit.slice(0, 10);
  return version.pinned ? `${version.pinned.ref} (not installed yet)` : "";
}

function renderBadge(id) {
  const slot = $(`tbody.instance[data-id='${id}'] [data-show='version']`);
  if (!slot) return;
  const version = versions.get(id);
  const text = version ? short(version) : "";
  const newer = version?.update_available ? version.latest.tag : null;
  slot.replaceChildren(text, newer ? h("span", { class: "update-available", text: ` · ${newer} available` }) : "");
  slot.hidden = !text;
  slot.title = version?.latest?.status === "unknown" ? `Newest release unknown: ${version.latest.reason}` : "";
}

export function openVersions(id) {
  shownId = id;
  const inst = state.instances.get(id);
  $("#versions-title").textContent = `Versions — ${inst?.name ?? id}`;
  showError($("#versions-error"), "");
  renderDialog();
  openDialog($("#versions-dialog"), { onClose: () => { shownId = null; } });
  load(id, true);
}

function fact(term, ...value) {
  return [h("dt", { text: term }), h("dd", {}, ...value)];
}

function renderDialog() {
  const version = versions.get(shownId);
  const facts = $("#versions-facts");
  const update = $("#versions-update");
  if (!version) {
    facts.replaceChildren(h("dt", { text: "Version" }), h("dd", { class: "muted", text: "Asking…" }));
    update.hidden = true;
    $("#versions-snapshots").replaceChildren();
    return;
  }
  const { app, pinned, latest } = version;
  const releaseText = !latest ? "no remote" : latest.status === "unknown"
    ? `unknown (${latest.reason})` : latest.tag ?? "no release tags";
  facts.replaceChildren(
    ...fact("App", app ? `${app.path} · ${app.tag ?? "no tag"} · ${app.commit.slice(0, 12)}` : "not cloned yet"),
    ...fact("Pinned", pinned ? `${pinned.variable} = ${pinned.ref}` : "the script pins no app ref"),
    ...fact("Newest release", releaseText),
  );
  const inst = state.instances.get(shownId);
  // A satellite runs its parent's app: it is updated and rolled back there.
  const own = version.installed_in.id === shownId;
  if (!own) facts.append(...fact("Runs", `the app and environment of ${version.installed_in.name}`));
  // While it starts or stops (an update installing), nothing else may move under it.
  const settled = own && Boolean(inst) && SETTLED.has(inst.status);
  const target = version.update_available && settled ? latest.tag : null;
  update.hidden = !target;
  update.textContent = target ? `Update to ${target}` : "Update";
  update.dataset.ref = target ?? "";
  if (version.operation) {
    facts.append(...fact("Under way", `${version.operation.kind} to ${version.operation.target}`));
  }
  if (!settled && inst) {
    const note = inst.status_message ? `: ${inst.status_message.split("\n")[0]}` : "";
    facts.append(...fact("Now", `${inst.status}${note}`));
  }
  renderSnapshots(version, settled, own);
}

function renderSnapshots(version, settled, own) {
  const list = $("#versions-snapshots");
  if (version.snapshots.length === 0) {
    list.replaceChildren(h("p", { class: "muted small", text: "No snapshots yet: an update takes one first." }));
    return;
  }
  list.replaceChildren(h("table", { class: "snapshots" },
    h("thead", {}, h("tr", {}, ["Taken", "Version", "Packages", "Reason", ""].map((t) => h("th", { text: t })))),
    h("tbody", {}, version.snapshots.map((snapshot) => h("tr", { "data-snapshot": snapshot.id },
      h("td", { text: new Date(snapshot.created_at).toLocaleString() }),
      h("td", { class: "mono", text: snapshot.tag ?? snapshot.commit.slice(0, 12) }),
      h("td", { text: snapshot.packages ?? "—" }),
      h("td", { text: snapshot.reason }),
      h("td", {}, h("button", {
        type: "button", class: "btn btn-small btn-warn", text: "Roll back", disabled: !settled,
        title: settled ? "" : own ? "Wait until it is running or stopped" : `Roll back ${version.installed_in.name}`,
        onclick: (event) => rollBack(event.currentTarget, snapshot),
      })))))));
}

async function updateApp(button) {
  const id = shownId;
  const ref = button.dataset.ref;
  const inst = state.instances.get(id);
  const ok = await confirmAction({
    title: `Update ${inst.name} to ${ref}?`,
    text: "A snapshot of the app's commit and its exact packages is taken first. Then the instance "
      + "restarts and its blueprint installs the new release. If it breaks, Roll back restores the snapshot.",
    confirm: "Update",
  });
  if (!ok) return;
  await act(button, () => api.versionUpdate(id, ref), `Updating ${inst.name} to ${ref}…`);
}

async function rollBack(button, snapshot) {
  const id = shownId;
  const inst = state.instances.get(id);
  const label = snapshot.tag ?? snapshot.commit.slice(0, 12);
  const ok = await confirmAction({
    title: `Roll ${inst.name} back to ${label}?`,
    text: `It stops, its app goes back to ${label} and its environment to the ${snapshot.packages ?? "saved"} `
      + "packages of the snapshot, then it starts again.",
    confirm: "Roll back",
  });
  if (!ok) return;
  await act(button, () => api.versionRollback(id, snapshot.id), `Rolled ${inst.name} back to ${label}; starting…`);
}

async function act(button, call, done) {
  const id = shownId;
  showError($("#versions-error"), "");
  await busy(button, async () => {
    try {
      await call();
      toast(done);
    } catch (err) {
      showError($("#versions-error"), err.message);
    }
  });
  await load(id);
}

export function setupVersionsDialog() {
  $("#versions-update").addEventListener("click", (event) => updateApp(event.currentTarget));
}
