// The instances table: live rows, inline edits saved with Update, actions, and the Add dialog.

import { api, ApiError } from "./api.js";
import { filterBlueprints, openSaveBlueprint } from "./blueprints.js";
import { LIVE_FIELDS } from "./config.js";
import { openDesktop } from "./desktop.js";
import { $, $$, busy, confirmAction, h, openDialog, showError, toast } from "./dom.js";
import * as fmt from "./format.js";
import { fillWhere, whereFields } from "./cluster.js";
import { openCopy, openSatellite } from "./copies.js";
import { openEditor } from "./editor.js";
import { failureLine } from "./failure.js";
import { openFiles } from "./files.js";
import { listing, matches, ordered, setSort } from "./listing.js";
import { openLogs } from "./logs.js";
import { openOutputs } from "./outputs.js";
import { progressDetail, statusText, tickProgress } from "./progress.js";
import { setupRowMenu } from "./rowmenu.js";
import { openSettings } from "./settings.js";
import { removeInstance, state, upsertInstance, usageOf, on } from "./state.js";
import { openTerminal } from "./terminal.js";
import { openVersions } from "./versions.js";

const STOPPED = new Set(["stopped", "error"]);

const table = () => $("#instances-table");
const rows = new Map(); // id -> <tbody>
const selected = new Set(); // ids ticked for a bulk start/stop
// The controls that act on AiKore; paused (disabled) while it does not answer.
// The tools pane's script tabs save and restart through the API too.
const ACTIONS = "#view-instances button, #view-instances a[data-action], #view-instances input[data-field], "
  + "#tools .editor-save, #tools .editor-restart";
let offline = false;

/** Pause every action while AiKore is away; on its return, drop the errors that its absence caused. */
export function setInstancesOffline(on) {
  offline = on;
  if (on) {
    for (const control of $$(ACTIONS)) {
      if (control.disabled || control.getAttribute("aria-disabled") === "true") continue;
      control.dataset.offline = "yes";
      if (control.tagName === "A") control.setAttribute("aria-disabled", "true");
      else control.disabled = true;
    }
    return;
  }
  for (const control of $$("[data-offline]")) {
    delete control.dataset.offline;
    if (control.tagName === "A") control.removeAttribute("aria-disabled");
    else control.disabled = false;
  }
  for (const body of rows.values()) {
    if (show(body, "error").dataset.code === "network") rowError(body, null);
  }
  renderAll();
}

export function setupInstances() {
  on("instances", renderAll);
  on("stats", () => {
    renderUsage();
    if ($("#add-gpus").dataset.pending) renderGpuChoices();
  });
  $("#add-instance-btn").addEventListener("click", openAddDialog);
  $$("[data-action='open-add']").forEach((btn) => btn.addEventListener("click", openAddDialog));
  $("#add-form").addEventListener("submit", submitAdd);
  on("blueprints", () => {
    if ($("#add-dialog").open) renderBlueprintChoices();
  });
  tickProgress(renderProgress);
  setupListing();
}

function setupListing() {
  const sort = $("#instances-sort");
  sort.value = listing.sort;
  sort.addEventListener("change", () => {
    setSort(sort.value);
    renderAll();
  });
  $("#instances-filter").addEventListener("input", (event) => {
    listing.filter = event.target.value;
    renderAll();
  });
  $("#select-all").addEventListener("change", (event) => {
    for (const [id, body] of rows) {
      if (!body.hidden) toggleSelected(id, event.target.checked);
    }
    renderSelection();
  });
  $("#bulk-start").addEventListener("click", () => bulk("start"));
  $("#bulk-stop").addEventListener("click", () => bulk("stop"));
  $("#bulk-clear").addEventListener("click", () => {
    selected.clear();
    renderSelection();
  });
}

function toggleSelected(id, on) {
  if (on) selected.add(id);
  else selected.delete(id);
}

function renderSelection() {
  for (const id of [...selected]) if (!state.instances.has(id)) selected.delete(id);
  for (const [id, body] of rows) $(".row-select", body).checked = selected.has(id);
  const shown = [...rows].filter(([, body]) => !body.hidden);
  const all = $("#select-all");
  all.checked = shown.length > 0 && shown.every(([id]) => selected.has(id));
  all.indeterminate = !all.checked && shown.some(([id]) => selected.has(id));
  $("#instances-bulk").hidden = selected.size === 0;
  $("#bulk-count").textContent = `${selected.size} selected`;
}

/** Start (or stop) every selected instance that is not already so; says what happened. */
async function bulk(verb) {
  const wanted = [...selected].map((id) => state.instances.get(id)).filter(Boolean)
    .filter((inst) => (verb === "start" ? STOPPED.has(inst.status) : !STOPPED.has(inst.status)));
  if (wanted.length === 0) {
    toast(`Nothing to ${verb}: the selected instances are already ${verb === "start" ? "running" : "stopped"}.`);
    return;
  }
  const button = $(`#bulk-${verb}`);
  await busy(button, async () => {
    const results = await Promise.allSettled(wanted.map((inst) => api.action(inst.id, verb)));
    const failed = [];
    results.forEach((result, index) => {
      if (result.status === "fulfilled" && result.value?.id) upsertInstance(result.value);
      else if (result.status === "rejected") failed.push(`${wanted[index].name}: ${result.reason.message}`);
    });
    const done = wanted.length - failed.length;
    const verbed = verb === "start" ? "Starting" : "Stopping";
    toast([`${verbed} ${done} of ${wanted.length}.`, ...failed].join(" "), { error: failed.length > 0 });
  });
}

function renderProgress() {
  for (const [id, body] of rows) {
    const inst = state.instances.get(id);
    if (inst) show(body, "progress").textContent = progressDetail(inst);
  }
}

export function renderAll() {
  $("#instances-loading").hidden = true;
  const instances = grouped(ordered(state.instances.values(), blueprintName));
  for (const [id, body] of rows) {
    if (!state.instances.has(id)) {
      body.remove();
      rows.delete(id);
    }
  }
  let previous = table().tHead;
  for (const instance of instances) {
    let body = rows.get(instance.id);
    if (!body) {
      body = createRow(instance.id);
      rows.set(instance.id, body);
    }
    if (previous.nextElementSibling !== body) previous.after(body);
    previous = body;
    renderRow(body, instance);
    body.hidden = !matches(instance, blueprintName(instance.blueprint));
  }
  $("#instances-empty").hidden = instances.length > 0;
  table().hidden = instances.length === 0;
  $("#instances-tools").hidden = instances.length === 0;
  const shown = instances.filter((inst) => !rows.get(inst.id).hidden).length;
  $("#instances-count").textContent = listing.filter
    ? `${shown} of ${instances.length} shown` : `${instances.length} instance${instances.length === 1 ? "" : "s"}`;
  renderSelection();
}

/** By name, each satellite right under its parent. */
/** Satellites right under their parent; `list` comes in the chosen order, which each group keeps. */
function grouped(list) {
  const isRoot = (inst) => !inst.parent_id || !state.instances.has(inst.parent_id);
  return list.filter(isRoot)
    .flatMap((root) => [root, ...list.filter((i) => !isRoot(i) && i.parent_id === root.id)]);
}

function createRow(id) {
  const body = $("#instance-row").content.firstElementChild.cloneNode(true);
  body.dataset.id = id;
  setupRowMenu(body, id);
  $(".details-toggle", body).addEventListener("click", (event) => {
    const expanded = body.classList.toggle("expanded");
    event.currentTarget.setAttribute("aria-expanded", String(expanded));
  });
  $(".row-select", body).addEventListener("change", (event) => {
    toggleSelected(id, event.target.checked);
    renderSelection();
  });
  for (const input of $$("[data-field]", body)) {
    input.addEventListener(input.type === "checkbox" ? "change" : "input", () => {
      delete body.dataset.setAside;
      markDirty(body);
    });
    // A locked checkbox does not change; focusing any locked field says why it is locked.
    input.addEventListener("click", (event) => {
      if (input.getAttribute("aria-disabled") === "true" && input.type === "checkbox") event.preventDefault();
    });
    input.addEventListener("focus", () => {
      if (input.getAttribute("aria-disabled") !== "true") return;
      body.dataset.lockHint = input.dataset.field;
      renderNote(body, instanceOf(body));
    });
    input.addEventListener("blur", () => {
      if (!body.dataset.lockHint) return;
      delete body.dataset.lockHint;
      const inst = instanceOf(body);
      if (inst) renderNote(body, inst);
    });
    if (input.type !== "checkbox") {
      input.addEventListener("keydown", (event) => {
        if (event.key === "Enter") update(body);
        if (event.key === "Escape" && isDirty(body)) {
          event.preventDefault();
          revert(body);
        }
      });
    }
  }
  body.addEventListener("click", (event) => {
    const control = event.target.closest("[data-action]");
    if (control && body.contains(control)) onAction(body, control, event);
  });
  return body;
}

function instanceOf(body) {
  return state.instances.get(Number(body.dataset.id));
}

function show(body, key) {
  return $(`[data-show='${key}']`, body);
}

function renderRow(body, inst) {
  const stopped = STOPPED.has(inst.status);
  // Screen readers hear status changes without the whole table being a live region.
  if (body.dataset.status && body.dataset.status !== inst.status) {
    $("#announcer").textContent = `${inst.name} is ${inst.status}`;
  }
  body.dataset.status = inst.status;
  body.dataset.name = inst.name;
  const parent = inst.parent_id ? state.instances.get(inst.parent_id) : null;
  body.classList.toggle("satellite", Boolean(parent));
  show(body, "parent").textContent = parent ? `↳ satellite of ${parent.name}` : "";
  show(body, "parent").hidden = !parent;
  const setAside = [];
  for (const input of $$("[data-field]", body)) {
    const field = input.dataset.field;
    const locked = !stopped && !LIVE_FIELDS.has(field);
    // An unsaved edit of a field that just got locked (started elsewhere) cannot be saved: it is
    // set aside, and said so, rather than left to fail with 409 on Update.
    if (locked && input.classList.contains("changed")) {
      setAside.push(fieldLabel(field));
      input.classList.remove("changed");
    }
    // Never overwrite what the user is typing: an unsaved edit stays until Update or Escape.
    if (!input.classList.contains("changed")) setValue(input, inst[field]);
    setLocked(input, locked);
    input.title = locked ? "Stop the instance to change this" : "";
    // A long name is cut short with "…" in the cell; hovering shows it whole (focus scrolls it).
    if (field === "name") input.title = [inst.name, input.title].filter(Boolean).join("\n");
  }
  const badge = show(body, "status");
  badge.textContent = statusText(inst);
  badge.dataset.status = inst.status;
  badge.toggleAttribute("data-installing", badge.textContent !== inst.status);
  show(body, "progress").textContent = progressDetail(inst);
  show(body, "blueprint").textContent = blueprintName(inst.blueprint);
  show(body, "pid").textContent = inst.pid ?? (inst.slurm_partition ? "" : fmt.DASH);
  renderSlurm(body, inst);
  renderPort(body, inst);
  renderButtons(body, inst);
  if (setAside.length) body.dataset.setAside = setAside.join(", ");
  // Stopped again: nothing is locked, so neither note has anything left to say.
  if (stopped) {
    delete body.dataset.setAside;
    delete body.dataset.lockHint;
  }
  renderNote(body, inst);
  renderUsageRow(body, inst);
  markDirty(body);
}

/**
 * Locked while it runs: read-only and aria-disabled rather than disabled, so the field can still be
 * focused and the row can say why (a lock is drawn beside it; focus puts the reason in the row).
 */
function setLocked(input, locked) {
  input.disabled = false;
  if (input.type !== "checkbox") input.readOnly = locked;
  if (locked) input.setAttribute("aria-disabled", "true");
  else input.removeAttribute("aria-disabled");
  input.closest("td").classList.toggle("locked", locked);
}

function lockHint(body, inst) {
  const field = body.dataset.lockHint;
  if (!field) return "";
  return `${fieldLabel(field)} is locked while ${inst.name} is ${inst.status}: stop it to change this.`;
}

function setValue(input, value) {
  if (input.type === "checkbox") input.checked = Boolean(value);
  else input.value = value ?? "";
}

function valueOf(input) {
  return input.type === "checkbox" ? input.checked : input.value.trim();
}

function blueprintName(id) {
  const bp = state.blueprints.find((b) => b.id === id);
  return bp ? bp.name : id;
}

function openUrl(inst) {
  if (inst.persistent_mode && inst.desktop_url) return inst.desktop_url;
  // A public port is on the host the browser already reaches AiKore by; a URL built by the server
  // outside a request (live events) can only guess that host.
  const publicUrl = inst.public_port ? `${location.protocol}//${location.hostname}:${inst.public_port}/` : null;
  if (inst.proxy_mode === "port-only") return publicUrl;
  return inst.url ?? publicUrl;
}

/**
 * Where a Slurm instance runs, under its PID cell (a job has no pid here): "partition/node · job N"
 * while its job is active, else the partition (and node) its next start asks for.
 */
function renderSlurm(body, inst) {
  const badge = show(body, "where");
  const partition = inst.slurm_partition;
  badge.hidden = !partition;
  if (!partition) return;
  const active = !STOPPED.has(inst.status) && (inst.slurm_job_id ?? null) !== null;
  const node = active ? inst.node ?? inst.slurm_node : inst.slurm_node;
  badge.textContent = `${partition}${node ? `/${node}` : ""}${active ? ` · job ${inst.slurm_job_id}` : ""}`;
  badge.title = active
    ? `Slurm job ${inst.slurm_job_id} on partition ${partition}${inst.node ? `, node ${inst.node}`
      + `${inst.node_address ? ` (${inst.node_address})` : ""}` : ", not on a node yet"}`
    : `Runs as a Slurm job on partition ${partition}${node ? `, node ${node}` : ""} from its next start`;
}

function renderPort(body, inst) {
  const ports = [];
  if (inst.port) ports.push(`:${inst.port}`);
  if (inst.public_port) ports.push(`public :${inst.public_port}`);
  const link = show(body, "url");
  const url = openUrl(inst);
  show(body, "port").textContent = ports.join(" · ") || (url ? "" : fmt.DASH);
  link.hidden = !url;
  if (url) {
    link.href = url;
    link.textContent = url.startsWith("/") ? url : url.replace(/^https?:\/\//, "");
    // The link is cut short with "…" in the cell; the tooltip has it whole.
    link.title = [link.textContent, proxySummary(inst.proxy)].filter(Boolean).join("\n");
  }
}

/** The proxy's counters for this instance, for the link's tooltip (they change on each event). */
function proxySummary(proxy) {
  if (!proxy || typeof proxy !== "object") return "";
  const parts = [];
  if (proxy.requests !== undefined) parts.push(`${proxy.requests} requests`);
  if (proxy.bytes_in !== undefined) parts.push(`${fmt.bytes(proxy.bytes_in)} in`);
  if (proxy.bytes_out !== undefined) parts.push(`${fmt.bytes(proxy.bytes_out)} out`);
  if (proxy.open_websockets) parts.push(`${proxy.open_websockets} websockets open`);
  if (proxy.last_activity) parts.push(`last activity ${new Date(proxy.last_activity * 1000).toLocaleTimeString()}`);
  return parts.length ? `Proxy: ${parts.join(", ")}` : "";
}

function renderButtons(body, inst) {
  const stopped = STOPPED.has(inst.status);
  const byAction = (name) => $(`[data-action='${name}']`, body);
  byAction("start").hidden = !stopped;
  byAction("stop").hidden = stopped;
  byAction("stop").disabled = inst.status === "stopping";
  byAction("restart").disabled = inst.status !== "running";
  // A satellite has no environment of its own: its parent's is rebuilt (once it has no satellites).
  byAction("rebuild").disabled = inst.status === "stopping" || Boolean(inst.parent_id);
  byAction("rebuild").title = inst.parent_id ? "A satellite runs its parent's environment; it has none to rebuild" : "";
  const open = byAction("open");
  const url = openUrl(inst);
  const openable = Boolean(url) && inst.status === "running";
  open.setAttribute("aria-disabled", String(!openable));
  if (openable) open.href = url;
  else open.removeAttribute("href");
  open.title = openable ? `Open ${url} in a new tab` : "Opens once the instance is running";
  const view = byAction("view");
  view.hidden = !(inst.persistent_mode && inst.desktop_url);
  view.disabled = inst.status !== "running";
  for (const button of $$("button[data-action]", body)) {
    button.setAttribute("aria-label", `${button.textContent} ${inst.name}`);
  }
  open.setAttribute("aria-label", `Open ${inst.name}`);
  $(".more-toggle", body).setAttribute("aria-label", `More actions for ${inst.name}`);
  $(".more-toggle", body).title = "More actions";
  $(".row-select", body).setAttribute("aria-label", `Select ${inst.name}`);
}

function renderNote(body, inst) {
  const note = show(body, "note");
  let text = "";
  if (inst.status === "error") {
    text = failureLine(inst);
  } else if (inst.status_message && inst.status !== "stopped") {
    text = inst.status_message.split("\n")[0];
  }
  const notes = [lockHint(body, inst)];
  if (body.dataset.setAside) {
    notes.push(`Your unsaved change to ${body.dataset.setAside} was set aside: ${inst.name} started meanwhile, `
      + "which locks it.");
  }
  text = [text, ...notes].filter(Boolean).join(" · ");
  // GPU IDs that could not be checked (no NVML) or name a GPU that is gone: said, not refused.
  if (inst.gpu_warning) text = text ? `${text} · ${inst.gpu_warning}` : inst.gpu_warning;
  const gpuInput = $("[data-field='gpu_ids']", body);
  gpuInput.classList.toggle("warn", Boolean(inst.gpu_warning));
  if (inst.gpu_warning) gpuInput.title = inst.gpu_warning;
  note.textContent = text;
  note.hidden = !text;
  note.classList.toggle("error", inst.status === "error");
  syncNoteRow(body);
}

function syncNoteRow(body) {
  const visible = !show(body, "note").hidden || !show(body, "error").hidden;
  $(".instance-note", body).hidden = !visible;
}

/** Show an API error in the instance's own row, next to the field it names when it names one. */
function rowError(body, err) {
  const message = err ? err.message : "";
  showError(show(body, "error"), message);
  // A "did not answer" error is about AiKore being away, not this row: it goes when AiKore is back.
  show(body, "error").dataset.code = err instanceof ApiError ? err.code : "";
  for (const input of $$("[data-field]", body)) input.removeAttribute("aria-invalid");
  if (err instanceof ApiError && err.field) {
    $(`[data-field='${err.field}']`, body)?.setAttribute("aria-invalid", "true");
  }
  syncNoteRow(body);
}

function renderUsage() {
  for (const [id, body] of rows) {
    const inst = state.instances.get(id);
    if (inst) renderUsageRow(body, inst);
  }
}

function renderUsageRow(body, inst) {
  const usage = STOPPED.has(inst.status) ? null : usageOf(inst);
  show(body, "cpu").textContent = fmt.percent(usage?.cpu_percent, 0);
  show(body, "ram").textContent = fmt.bytes(usage?.rss_bytes);
  show(body, "vram").textContent = fmt.bytes(usage?.gpu_memory_bytes);
}

function changes(body) {
  const inst = instanceOf(body);
  const out = {};
  if (!inst) return out;
  for (const input of $$("[data-field]", body)) {
    const field = input.dataset.field;
    const value = valueOf(input);
    const current = input.type === "checkbox" ? Boolean(inst[field]) : String(inst[field] ?? "");
    if (value !== current) out[field] = value;
  }
  return out;
}

function fieldLabel(field) {
  return $(`[data-field='${field}']`, $("#instance-row").content)?.getAttribute("aria-label") ?? field;
}

function isDirty(body) {
  return Object.keys(changes(body)).length > 0;
}

function markDirty(body) {
  const changed = changes(body);
  for (const input of $$("[data-field]", body)) {
    input.classList.toggle("changed", input.dataset.field in changed);
  }
  const dirty = Object.keys(changed).length > 0;
  body.classList.toggle("dirty", dirty);
  $("[data-action='update']", body).hidden = !dirty;
}

function revert(body) {
  const inst = instanceOf(body);
  delete body.dataset.setAside;
  for (const input of $$("[data-field]", body)) {
    input.classList.remove("changed");
    setValue(input, inst[input.dataset.field]);
  }
  rowError(body, null);
  markDirty(body);
}

async function update(body) {
  const inst = instanceOf(body);
  const fields = changes(body);
  if (!inst || offline || Object.keys(fields).length === 0) return;
  const button = $("[data-action='update']", body);
  await busy(button, async () => {
    try {
      const updated = await api.update(inst.id, fields);
      for (const input of $$("[data-field]", body)) input.classList.remove("changed");
      rowError(body, null);
      upsertInstance(updated);
      toast(`Saved ${updated.name}: ${Object.keys(fields).map(fieldLabel).join(", ")}.`);
    } catch (err) {
      rowError(body, err);
    }
  });
}

async function onAction(body, control, event) {
  const action = control.dataset.action;
  const inst = instanceOf(body);
  if (!inst || offline) return;
  if (action === "open") {
    if (control.getAttribute("aria-disabled") === "true") event.preventDefault();
    return;
  }
  if (action === "update") return update(body);
  if (action === "logs") return openLogs(inst.id);
  if (action === "script") return openEditor(inst.id);
  if (action === "settings") return openSettings(inst.id);
  if (action === "terminal") return openTerminal(inst.id);
  if (action === "files") return openFiles(inst.id);
  if (action === "outputs") return openOutputs(inst.id);
  if (action === "versions") return openVersions(inst.id);
  if (action === "copy") return openCopy(inst.id);
  if (action === "satellite") return openSatellite(inst.id);
  if (action === "save-blueprint") return openSaveBlueprint(inst.id);
  if (action === "view") return openDesktop(inst.id);
  if (action === "rebuild") {
    const ok = await confirmAction({
      title: `Rebuild ${inst.name}?`,
      text: `${STOPPED.has(inst.status) ? "It starts" : "It restarts"} with AIKORE_REBUILD_ENV=1, so its `
        + "script recreates its Python environment. This can take a while and downloads packages "
        + "again. Models and outputs are kept.",
      confirm: "Rebuild",
    });
    if (!ok) return;
  }
  if (action === "delete") {
    const ok = await confirmAction({
      title: `Delete ${inst.name}?`,
      text: (STOPPED.has(inst.status) ? "" : "It is stopped first. ")
        + `Its folder is moved to the trash folder in AiKore's data directory; nothing is erased.`,
      confirm: "Delete",
    });
    if (!ok) return;
  }
  await busy(control, async () => {
    try {
      if (action === "delete") {
        if (!STOPPED.has(inst.status)) toast(`Stopping and deleting ${inst.name}…`);
        await api.remove(inst.id);
        removeInstance(inst.id);
        toast(`Deleted ${inst.name}. Its folder is in the trash folder of AiKore's data directory.`);
        return;
      }
      const result = await api.action(inst.id, action);
      rowError(body, null);
      if (result && typeof result === "object" && result.id === inst.id) upsertInstance(result);
    } catch (err) {
      rowError(body, err);
    }
  });
}

// ---- Add instance ----

function openAddDialog() {
  const form = $("#add-form");
  form.reset();
  clearFormErrors(form);
  renderBlueprintChoices();
  renderGpuChoices();
  fillWhere();
  openDialog($("#add-dialog"));
  $("#add-name").focus();
}

function renderBlueprintChoices() {
  const list = $("#add-blueprints");
  list.replaceChildren();
  const sorted = [...state.blueprints].sort(
    (a, b) => (a.id === "demo" ? -1 : b.id === "demo" ? 1 : 0)
      || a.category.localeCompare(b.category) || a.name.localeCompare(b.name),
  );
  if (sorted.length === 0) list.append(h("p", { class: "muted", text: "No blueprints found." }));
  sorted.forEach((bp, index) => {
    const custom = bp.source === "custom";
    const search = [bp.id, bp.name, bp.category, bp.description, custom ? "custom" : ""].join(" ").toLowerCase();
    list.append(
      h("label", { class: "blueprint", "data-blueprint": bp.id, "data-source": bp.source, "data-search": search },
        h("input", { type: "radio", name: "blueprint", value: bp.id, checked: index === 0 }),
        h("span", {},
          h("span", { class: "blueprint-name", text: bp.name }), " ",
          custom ? h("span", { class: "blueprint-tag", text: "Custom" }) : "", " ",
          h("span", { class: "blueprint-cat", text: bp.category || "" }),
          h("p", { class: "blueprint-desc", text: bp.description || "" }))),
    );
  });
  filterBlueprints();
}

function renderGpuChoices() {
  const list = $("#add-gpus");
  list.replaceChildren();
  // Before the first sample there is nothing to say yet; the first one fills this in.
  list.dataset.pending = state.stats ? "" : "yes";
  if (!state.stats) {
    list.append(h("p", { class: "none", text: "Detecting GPUs…" }));
    return;
  }
  const gpus = state.stats.gpus ?? [];
  if (gpus.length === 0) {
    const reason = state.stats.gpu_reason;
    list.append(h("p", { class: "none", text: `No GPU detected${reason ? ` (${reason})` : ""}; the instance runs without one.` }));
    return;
  }
  for (const gpu of gpus) {
    list.append(h("label", { class: "check" },
      h("input", { type: "checkbox", name: "gpu", value: String(gpu.index) }),
      `GPU ${gpu.index}${gpu.name ? ` · ${gpu.name}` : ""}`));
  }
}

function clearFormErrors(form) {
  for (const el of $$("[data-error-for]", form)) showError(el, "");
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
}

function formFields(form) {
  const data = new FormData(form);
  const fields = {
    name: String(data.get("name") ?? "").trim(),
    blueprint: data.get("blueprint") ?? "",
    gpu_ids: data.getAll("gpu").join(","),
    autostart: data.get("autostart") === "on",
    persistent_mode: data.get("persistent_mode") === "on",
    restart_policy: data.get("restart_policy"),
  };
  const port = String(data.get("public_port") ?? "").trim();
  // Sent as typed: a number when it is one, else the text, so the API's message names the problem.
  if (port) fields.public_port = /^\d+$/.test(port) ? Number(port) : port;
  return { ...fields, ...whereFields(data) };
}

async function submitAdd(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearFormErrors(form);
  await busy($("#add-submit"), async () => {
    try {
      const created = await api.create(formFields(form));
      upsertInstance(created);
      $("#add-dialog").close();
      rows.get(created.id)?.querySelector("[data-action='start']")?.focus();
    } catch (err) {
      formError(form, err);
    }
  });
}

function formError(form, err) {
  const field = err instanceof ApiError ? err.field : "";
  const slot = $(`[data-error-for='${field}']`, form) ?? $("[data-error-for='']", form);
  showError(slot, err.message);
  const input = field ? form.elements.namedItem(field) : null;
  if (input && input.setAttribute) {
    input.setAttribute("aria-invalid", "true");
    if (field === "public_port") $(".advanced", form).open = true;
    input.focus();
  }
}
