// Copies and satellites: the Copy and Add satellite dialogs, and each copy's progress in its
// source's row (from the events stream's "copy" events) with a Cancel button.

import { api, ApiError } from "./api.js";
import { $, $$, busy, h, openDialog, showError, toast } from "./dom.js";
import * as fmt from "./format.js";
import { on, state, upsertInstance } from "./state.js";

const jobs = new Map(); // copy id -> the API's CopyJob
const dismissed = new Set(); // ended copies whose message the user closed
let copyFrom = null;
let satelliteOf = null;

export function setupCopies() {
  on("instances", renderAll);
  $("#copy-form").addEventListener("submit", submitCopy);
  $("#satellite-form").addEventListener("submit", submitSatellite);
  api.copies().then((list) => list.forEach(onCopy), () => {});
}

/** Handlers for the events stream. */
export const copyEvents = { copy: (job) => onCopy(job) };

function onCopy(job) {
  const before = jobs.get(job.id);
  jobs.set(job.id, job);
  if (before?.state === "copying" && job.state === "done") toast(`${job.name} is ready: a copy of ${job.source_name}`);
  renderAll();
}

function renderAll() {
  for (const body of $$("tbody.instance")) render(body, Number(body.dataset.id));
}

function render(body, id) {
  const slot = $("[data-show='copies']", body);
  if (!slot) return;
  const mine = [...jobs.values()].filter((job) => job.source_id === id && job.state !== "done" && !dismissed.has(job.id));
  slot.replaceChildren(...mine.map(line));
  slot.hidden = mine.length === 0;
}

function line(job) {
  if (job.state === "copying") {
    const percent = job.bytes_total ? Math.floor((100 * job.bytes_done) / job.bytes_total) : 0;
    const size = job.environment === "copy"
      ? ` ${fmt.bytes(job.bytes_done)} of ${fmt.bytes(job.bytes_total)} (${percent}%)` : "";
    return h("p", { class: "copy-line", "data-copy": job.id, "data-state": job.state },
      h("span", { text: `Copying to ${job.name}…${size}` }), " ",
      h("progress", { max: "100", value: String(percent), "aria-label": `Copy to ${job.name}` }), " ",
      h("button", { type: "button", class: "btn btn-small", onclick: (event) => cancel(job, event.currentTarget),
        text: "Cancel copy" }));
  }
  const text = job.state === "cancelled" ? `Copy to ${job.name} cancelled; nothing was kept.`
    : `Copy to ${job.name} failed: ${job.error}`;
  return h("p", { class: `copy-line${job.state === "failed" ? " error" : ""}`, "data-copy": job.id,
    "data-state": job.state },
  h("span", { text }), " ",
  h("button", { type: "button", class: "btn btn-small btn-ghost", "aria-label": "Dismiss",
    onclick: () => { dismissed.add(job.id); renderAll(); }, text: "✕" }));
}

async function cancel(job, button) {
  await busy(button, async () => {
    try {
      onCopy(await api.cancelCopy(job.id));
    } catch (err) {
      toast(err.message, { error: true });
    }
  });
}

function clearErrors(form) {
  for (const el of $$("[data-error-for]", form)) showError(el, "");
}

function formError(form, err) {
  const field = err instanceof ApiError ? err.field : "";
  showError($(`[data-error-for='${field}']`, form) ?? $("[data-error-for='']", form), err.message);
}

export function openCopy(id) {
  const inst = state.instances.get(id);
  if (!inst) return;
  copyFrom = id;
  const form = $("#copy-form");
  form.reset();
  clearErrors(form);
  $("#copy-title").textContent = `Copy ${inst.name}`;
  // A satellite has no environment of its own: its copy is another satellite of the same parent.
  $("#copy-with-env").disabled = inst.parent_id !== null && inst.parent_id !== undefined;
  $("#copy-name").value = `${inst.name}-copy`;
  $("#copy-gpus").value = inst.gpu_ids ?? "";
  openDialog($("#copy-dialog"));
  $("#copy-name").select();
}

async function submitCopy(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const data = new FormData(form);
  await busy($("#copy-submit"), async () => {
    try {
      onCopy(await api.copy(copyFrom, {
        name: String(data.get("name") ?? "").trim(), environment: data.get("environment"),
        gpu_ids: String(data.get("gpu_ids") ?? "").trim(),
      }));
      $("#copy-dialog").close();
    } catch (err) {
      formError(form, err);
    }
  });
}

export function openSatellite(id) {
  const inst = state.instances.get(id);
  if (!inst) return;
  satelliteOf = id;
  const form = $("#satellite-form");
  form.reset();
  clearErrors(form);
  $("#satellite-title").textContent = `Add a satellite of ${inst.name}`;
  $("#satellite-name").value = `${inst.name}-sat`;
  openDialog($("#satellite-dialog"));
  $("#satellite-name").select();
}

async function submitSatellite(event) {
  event.preventDefault();
  const form = event.currentTarget;
  clearErrors(form);
  const data = new FormData(form);
  await busy($("#satellite-submit"), async () => {
    try {
      const created = await api.createSatellite(satelliteOf, {
        name: String(data.get("name") ?? "").trim(), gpu_ids: String(data.get("gpu_ids") ?? "").trim(),
      });
      upsertInstance(created);
      $("#satellite-dialog").close();
      toast(`${created.name} added: a satellite of ${state.instances.get(satelliteOf)?.name ?? "its parent"}`);
    } catch (err) {
      formError(form, err);
    }
  });
}
