// The Settings dialog: every setting of an instance after its creation, including its launch
// arguments (one per line), extra environment variables and its blueprint's variables. While it
// runs, each field says whether a change applies at the next restart or needs it stopped. With
// --slurm it also says where the instance runs: this machine or a Slurm partition, with the job's
// GPUs, node, time limit and account.

import { api, ApiError } from "./api.js";
import { fillPartitions, whereFields } from "./cluster.js";
import { LIVE_FIELDS, RESTART_FIELDS } from "./config.js";
import { $, $$, busy, h, openDialog, showError, toast } from "./dom.js";
import { on, state, upsertInstance } from "./state.js";

const STOPPED = new Set(["stopped", "error"]);
// Variables rewrite launch.sh, which is read at the next start, like a restart field.
const SCRIPT_FIELD = "variables";
const SLURM_FIELDS = ["slurm_partition", "slurm_gpus", "slurm_node", "slurm_time_limit", "slurm_account"];
let current = null; // the id of the instance the dialog shows

export function setupSettings() {
  $("#settings-form").addEventListener("submit", save);
  const partition = $("#settings-partition");
  partition.addEventListener("change", () => { $("#settings-slurm").hidden = !partition.value; });
  on("instances", () => {
    const inst = current !== null ? state.instances.get(current) : null;
    if (inst && $("#settings-dialog").open) renderApplies(inst);
  });
}

export function openSettings(id) {
  const inst = state.instances.get(id);
  if (!inst) return;
  current = id;
  const form = $("#settings-form");
  clearErrors(form);
  $("#settings-title").textContent = `Settings — ${inst.name}`;
  form.elements.restart_policy.value = inst.restart_policy;
  form.elements.public_port.value = inst.public_port ?? "";
  form.elements.launch_args.value = (inst.launch_args ?? []).join("\n");
  form.elements.env.value = Object.entries(inst.env ?? {}).map(([k, v]) => `${k}=${v}`).join("\n");
  form.elements.desktop_resolution.value = inst.desktop_resolution ?? "";
  form.elements.desktop_fps.value = inst.desktop_fps ?? "";
  renderVariables(inst);
  renderWhere(inst);
  renderApplies(inst);
  openDialog($("#settings-dialog"), { onClose: () => { current = null; } });
  form.elements.restart_policy.focus();
}

function renderVariables(inst) {
  const box = $("#settings-variables");
  const variables = inst.variables ?? [];
  $("#settings-variables-box").hidden = variables.length === 0;
  box.replaceChildren(...variables.map((v) => {
    const id = `settings-var-${v.name}`;
    return h("div", { class: "field" },
      h("label", { for: id, class: "mono", text: v.name }),
      h("input", {
        id, class: "mono", autocomplete: "off", spellcheck: "false", "data-variable": v.name,
        value: v.value ?? "", disabled: v.value === null,
        title: v.value === null ? `launch.sh has no ${v.name}=\${${v.name}:-...} line to set` : "",
      }),
      h("p", { class: "hint", text: v.description }));
  }));
}

/** "Runs on": shown only with --slurm (the partitions come from the cluster), prefilled from the instance. */
async function renderWhere(inst) {
  const el = $("#settings-form").elements;
  // A local instance's slurm_gpus is 0; one moved to a partition most likely wants a GPU, as in the add dialog.
  el.slurm_gpus.value = inst.slurm_partition ? String(inst.slurm_gpus) : "1";
  el.slurm_node.value = inst.slurm_node ?? "";
  el.slurm_time_limit.value = inst.slurm_time_limit ?? "";
  el.slurm_account.value = inst.slurm_account ?? "";
  $("#settings-where").hidden = true;
  const enabled = await fillPartitions($("#settings-partition"), inst.slurm_partition ?? "");
  // The dialog may show another instance by now, or none.
  if (current === inst.id) $("#settings-where").hidden = !enabled;
}

/** What a change means while it runs: "next restart", "stop first", or nothing (applies at once). */
function renderApplies(inst) {
  const running = !STOPPED.has(inst.status);
  $("#settings-running").hidden = !running;
  for (const box of $$("[data-setting]", $("#settings-form"))) {
    const field = box.dataset.setting;
    const restart = field === SCRIPT_FIELD || RESTART_FIELDS.has(field);
    const live = field === SCRIPT_FIELD || LIVE_FIELDS.has(field);
    const note = !running ? "" : !live ? "stop first" : restart ? "next restart" : "";
    // A field inside a group (the Slurm job's) has no badge of its own: the group's says it.
    const badge = $(".applies", box);
    if (badge) {
      badge.textContent = note;
      badge.hidden = !note;
    }
    for (const input of $$("input, select, textarea", box)) {
      if (!input.dataset.variable) input.disabled = running && !live;
    }
  }
}

function lines(text) {
  return text.split("\n").map((line) => line.replace(/\r$/, "")).filter((line) => line.trim() !== "");
}

/** The env textarea as an object; a line without "=" is the user's to fix, named here. */
function parseEnv(text) {
  const env = {};
  for (const [index, line] of lines(text).entries()) {
    const at = line.indexOf("=");
    if (at <= 0) throw new ApiError(400, "invalid_field", `env: line ${index + 1} is not NAME=value`, "env");
    env[line.slice(0, at).trim()] = line.slice(at + 1);
  }
  return env;
}

function same(a, b) {
  return JSON.stringify(a) === JSON.stringify(b);
}

function changes(form, inst) {
  const out = {};
  const el = form.elements;
  const wanted = {
    restart_policy: el.restart_policy.value,
    public_port: el.public_port.value.trim() === "" ? null
      : /^\d+$/.test(el.public_port.value.trim()) ? Number(el.public_port.value.trim()) : el.public_port.value.trim(),
    launch_args: lines(el.launch_args.value),
    env: parseEnv(el.env.value),
    desktop_resolution: el.desktop_resolution.value.trim(),
    desktop_fps: /^\d+$/.test(el.desktop_fps.value.trim()) ? Number(el.desktop_fps.value.trim()) : el.desktop_fps.value.trim(),
  };
  for (const [field, value] of Object.entries(wanted)) {
    const before = inst[field] ?? (field === "public_port" ? null : field === "env" ? {} : field === "launch_args" ? [] : "");
    if (!same(value, before)) out[field] = value;
  }
  const variables = {};
  for (const input of $$("[data-variable]", form)) {
    const before = (inst.variables ?? []).find((v) => v.name === input.dataset.variable);
    if (before && before.value !== null && input.value.trim() !== before.value) {
      variables[input.dataset.variable] = input.value.trim();
    }
  }
  if (Object.keys(variables).length) out.variables = variables;
  Object.assign(out, whereChanges(form, inst));
  return out;
}

/** The Slurm fields that differ from the instance's; none while "Runs on" is not shown (no --slurm). */
function whereChanges(form, inst) {
  if ($("#settings-where").hidden) return {};
  const el = form.elements;
  // Read from the fields, not FormData, which leaves out the ones locked (disabled) while it runs.
  const partition = el.slurm_partition.value;
  const wanted = partition ? whereFields({ get: (name) => el[name].value }) : { slurm_partition: null };
  const out = {};
  for (const field of SLURM_FIELDS) {
    if (field in wanted && !same(wanted[field], inst[field] ?? null)) out[field] = wanted[field];
  }
  return out;
}

async function save(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const inst = state.instances.get(current);
  if (!inst) return;
  clearErrors(form);
  await busy($("#settings-submit"), async () => {
    try {
      const fields = changes(form, inst);
      if (Object.keys(fields).length === 0) {
        $("#settings-dialog").close();
        return;
      }
      const updated = await api.update(inst.id, fields);
      upsertInstance(updated);
      $("#settings-dialog").close();
      const later = !STOPPED.has(updated.status)
        && Object.keys(fields).some((f) => f === SCRIPT_FIELD || RESTART_FIELDS.has(f));
      toast(`Saved the settings of ${updated.name}${later ? "; restart it to apply them" : ""}.`);
    } catch (err) {
      showFieldError(form, err);
    }
  });
}

function clearErrors(form) {
  for (const el of $$("[data-error-for]", form)) showError(el, "");
  for (const el of $$("[aria-invalid]", form)) el.removeAttribute("aria-invalid");
}

function showFieldError(form, err) {
  const field = err instanceof ApiError ? err.field : "";
  const slot = $(`[data-error-for='${field}']`, form) ?? $("[data-error-for='']", form);
  showError(slot, err.message);
  const box = field ? $(`[data-setting='${field}']`, form) : null;
  $("input, select, textarea", box ?? document.createElement("div"))?.setAttribute("aria-invalid", "true");
}
