// Custom blueprints: "Save as blueprint" from an instance's script, import a .sh file, edit or
// delete a custom one (built-ins are read-only), and search/filter in the Add dialog's list.

import { api, ApiError } from "./api.js";
import { $, $$, busy, confirmAction, openDialog, showError, toast } from "./dom.js";
import { setBlueprints, state } from "./state.js";

let mode = null; // {kind: "save", instanceId} | {kind: "import"} | {kind: "edit", id}

export function setupBlueprints() {
  $("#add-search").addEventListener("input", filterBlueprints);
  $("#add-custom-only").addEventListener("change", filterBlueprints);
  $("#add-blueprints").addEventListener("change", syncTools);
  $("#bp-import").addEventListener("click", () => $("#bp-import-file").click());
  $("#bp-import-file").addEventListener("change", importFile);
  $("#bp-edit").addEventListener("click", editSelected);
  $("#bp-delete").addEventListener("click", deleteSelected);
  $("#blueprint-form").addEventListener("submit", submit);
}

/** Hide the blueprints the search and the Custom filter leave out (called after each render). */
export function filterBlueprints() {
  const words = $("#add-search").value.trim().toLowerCase().split(/\s+/).filter(Boolean);
  const customOnly = $("#add-custom-only").checked;
  let shown = 0;
  for (const label of $$("#add-blueprints label.blueprint")) {
    const text = label.dataset.search ?? "";
    const visible = (!customOnly || label.dataset.source === "custom") && words.every((w) => text.includes(w));
    label.hidden = !visible;
    shown += visible ? 1 : 0;
  }
  $("#add-search-empty").hidden = shown > 0 || $$("#add-blueprints label.blueprint").length === 0;
  syncTools();
}

function selected() {
  const input = $("#add-blueprints input[name='blueprint']:checked");
  return input ? state.blueprints.find((bp) => bp.id === input.value) : null;
}

function syncTools() {
  const bp = selected();
  const custom = bp?.source === "custom";
  $("#bp-edit").disabled = !custom;
  $("#bp-delete").disabled = !custom;
  $("#bp-hint").textContent = bp && !custom
    ? `${bp.name} is built in and read-only: save an instance's script as a blueprint to change it.`
    : "Built-in blueprints are read-only.";
}

async function reload(select) {
  setBlueprints(await api.blueprints());
  const input = select ? $(`#add-blueprints label.blueprint[data-blueprint='${CSS.escape(select)}'] input`) : null;
  if (input) input.checked = true;
  filterBlueprints();
}

function open(kind, { title, values, content = null }) {
  const form = $("#blueprint-form");
  form.reset();
  for (const el of $$("[data-error-for]", form)) showError(el, "");
  mode = kind;
  $("#blueprint-title").textContent = title;
  for (const [name, value] of Object.entries(values)) form.elements.namedItem(name).value = value ?? "";
  $("#blueprint-id").readOnly = kind.kind === "edit";
  $("#blueprint-content-field").hidden = content === null;
  $("#blueprint-content").value = content ?? "";
  openDialog($("#blueprint-dialog"));
  (kind.kind === "edit" ? $("#blueprint-name") : $("#blueprint-id")).focus();
}

export function openSaveBlueprint(instanceId) {
  const inst = state.instances.get(instanceId);
  if (!inst) return;
  const from = state.blueprints.find((bp) => bp.id === inst.blueprint);
  open({ kind: "save", instanceId }, {
    title: `Save ${inst.name}'s script as a blueprint`,
    values: { id: inst.name, name: inst.name, category: from?.category ?? "", description: from?.description ?? "" },
  });
}

async function importFile(event) {
  const file = event.currentTarget.files[0];
  event.currentTarget.value = "";
  if (!file) return;
  const id = file.name.replace(/\.sh$/i, "").replace(/[^A-Za-z0-9_.-]+/g, "-").replace(/^[^A-Za-z0-9]+/, "");
  open({ kind: "import" }, { title: `Import ${file.name}`, values: { id, name: id }, content: await file.text() });
}

async function editSelected() {
  const bp = selected();
  if (!bp) return;
  try {
    const full = await api.blueprint(bp.id);
    open({ kind: "edit", id: bp.id }, {
      title: `Edit blueprint ${bp.id}`, values: { id: bp.id, name: full.name, category: full.category,
        description: full.description }, content: full.content,
    });
  } catch (err) {
    toast(err.message, { error: true });
  }
}

async function deleteSelected() {
  const bp = selected();
  if (!bp) return;
  const ok = await confirmAction({
    title: `Delete blueprint ${bp.name}?`,
    text: "Its file is moved to the trash folder in AiKore's data directory. Instances made from it keep "
      + "their own copy of the script.",
    confirm: "Delete",
  });
  if (!ok) return;
  try {
    await api.removeBlueprint(bp.id);
    await reload(null);
    toast(`Blueprint ${bp.name} deleted`);
  } catch (err) {
    toast(err.message, { error: true });
  }
}

async function submit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  for (const el of $$("[data-error-for]", form)) showError(el, "");
  const data = Object.fromEntries(new FormData(form));
  const header = { name: data.name.trim(), category: data.category.trim(), description: data.description.trim() };
  await busy($("#blueprint-submit"), async () => {
    try {
      let saved;
      if (mode.kind === "edit") {
        saved = await api.saveBlueprint(mode.id, { ...header, content: data.content });
      } else if (mode.kind === "import") {
        saved = await api.createBlueprint({ id: data.id.trim(), ...header, content: data.content });
      } else {
        saved = await api.createBlueprint({ id: data.id.trim(), ...header, instance_id: mode.instanceId });
      }
      $("#blueprint-dialog").close();
      await reload(saved.id);
      toast(`Blueprint ${saved.name} saved (custom)`);
    } catch (err) {
      const field = err instanceof ApiError ? err.field : "";
      showError($(`[data-error-for='${field}']`, form) ?? $("[data-error-for='']", form), err.message);
    }
  });
}
