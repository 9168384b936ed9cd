// The file browser: an instance's folder or the shared models folder; upload with progress, zip
// download of folders, new folder, rename, delete to the trash, and text editing with CodeMirror.

import { request } from "./api.js";
import { $, busy, confirmAction, h, showError } from "./dom.js";
import * as fmt from "./format.js";
import { state } from "./state.js";
import { findTool, openTool, registerReopener } from "./workspace.js";

const MAX_TEXT = 2 * 1024 * 1024;
let view = null; // { root, path, instanceId }
let editing = null; // { path, saved, get }

const base = () => `/api/files/${view.root}`;
const query = (path) => `path=${encodeURIComponent(path)}`;
const join = (folder, name) => (folder ? `${folder}/${name}` : name);

async function load(path = view.path) {
  showError($("#files-error"), "");
  try {
    const listing = await request("GET", `${base()}?${query(path)}`);
    view.path = listing.path;
    render(listing.entries);
  } catch (err) {
    showError($("#files-error"), err.message);
  }
}

function crumbs() {
  const parts = view.path ? view.path.split("/") : [];
  const rootName = view.root === "models" ? "models" : state.instances.get(view.instanceId)?.name ?? "instance";
  const links = [h("button", { type: "button", class: "link", text: rootName, onclick: () => load("") })];
  parts.forEach((part, i) => {
    links.push(" / ", h("button", { type: "button", class: "link", text: part,
      onclick: () => load(parts.slice(0, i + 1).join("/")) }));
  });
  $("#files-crumbs").replaceChildren(...links);
  $("#files-up").disabled = !parts.length;
  $("#files-zip").href = `${base()}/download?${query(view.path)}`;
}

function render(entries) {
  crumbs();
  const rows = entries.map((entry) => {
    const isDir = entry.type === "dir" || entry.type === "dir-link";
    const name = isDir
      ? h("button", { type: "button", class: "link files-name", text: `${entry.name}/`, onclick: () => load(entry.path) })
      : h("span", { class: "files-name", text: entry.name });
    const actions = [
      !isDir && entry.size <= MAX_TEXT
        ? h("button", { type: "button", class: "btn btn-small", text: "Edit", onclick: () => edit(entry.path) }) : null,
      h("a", { class: "btn btn-small", text: isDir ? "Zip" : "Download", download: "",
        href: `${base()}/download?${query(entry.path)}` }),
      h("button", { type: "button", class: "btn btn-small", text: "Rename", onclick: () => rename(entry) }),
      h("button", { type: "button", class: "btn btn-small btn-danger", text: "Delete", onclick: () => remove(entry) }),
    ];
    return h("tr", { "data-path": entry.path },
      h("td", { "data-label": "Name" }, name),
      h("td", { class: "num mono", "data-label": "Size", text: isDir ? "" : fmt.bytes(entry.size) }),
      h("td", { class: "mono small", "data-label": "Modified", text: new Date(entry.mtime * 1000).toLocaleString() }),
      h("td", { class: "actions" }, h("div", { class: "action-group" }, actions)));
  });
  const table = h("table", { class: "files-table" },
    h("thead", {}, h("tr", {}, h("th", { text: "Name" }), h("th", { class: "num", text: "Size" }),
      h("th", { text: "Modified" }), h("th", { text: "" }))),
    h("tbody", {}, rows.length ? rows : h("tr", {}, h("td", { colspan: "4", class: "muted", text: "Empty folder" }))));
  $("#files-list").replaceChildren(table);
}

async function act(work) {
  try {
    await work();
    await load();
  } catch (err) {
    showError($("#files-error"), err.message);
  }
}

function mkdir() {
  const name = window.prompt("New folder name");
  if (name) act(() => request("POST", `${base()}/folders`, { path: view.path, name }));
}

function rename(entry) {
  const name = window.prompt(`Rename ${entry.name} to`, entry.name);
  if (name && name !== entry.name) act(() => request("POST", `${base()}/rename`, { path: entry.path, name }));
}

async function remove(entry) {
  const ok = await confirmAction({ title: `Delete ${entry.name}?`, text: "It is moved to AiKore's trash folder.",
    confirm: "Delete" });
  if (ok) act(() => request("DELETE", `${base()}/entry?${query(entry.path)}`));
}

/** PUT one file with a progress bar; XMLHttpRequest because fetch() reports no upload progress. */
function put(file, done, total) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", `${base()}/upload?${query(join(view.path, file.name))}&overwrite=1`);
    xhr.setRequestHeader("X-Requested-With", "aikore-dashboard");
    xhr.setRequestHeader("Content-Type", "application/octet-stream");
    xhr.upload.onprogress = (event) => progress(done + event.loaded, total, file.name);
    xhr.onload = () => {
      if (xhr.status < 300) return resolve();
      let message = `upload failed: HTTP ${xhr.status}`;
      try { message = JSON.parse(xhr.responseText).error.message; } catch { /* not JSON */ }
      reject(new Error(message));
    };
    xhr.onerror = () => reject(new Error("the upload was interrupted"));
    xhr.send(file);
  });
}

function progress(loaded, total, name) {
  $("#files-progress").hidden = false;
  $("#files-progress-bar").value = total ? loaded / total : 1;
  $("#files-progress-text").textContent = `${name}: ${fmt.bytes(loaded)} of ${fmt.bytes(total)}`;
}

async function upload(event) {
  const files = [...event.target.files];
  event.target.value = "";
  const total = files.reduce((sum, f) => sum + f.size, 0);
  let done = 0;
  try {
    for (const file of files) {
      await put(file, done, total);
      done += file.size;
    }
    $("#files-progress-text").textContent = `Uploaded ${files.length} file${files.length === 1 ? "" : "s"}`;
  } catch (err) {
    showError($("#files-error"), err.message);
  }
  await load();
}

function makeEditor(host, content, path) {
  host.replaceChildren();
  if (window.CodeMirror) {
    const cm = window.CodeMirror(host, { value: content, lineNumbers: true, mode: /\.sh$/.test(path) ? "shell" : null,
      extraKeys: { "Ctrl-S": () => save(), "Cmd-S": () => save() }, screenReaderLabel: path });
    setTimeout(() => cm.refresh(), 0);
    cm.on("change", dirty);
    return () => cm.getValue();
  }
  const area = h("textarea", { class: "fallback", spellcheck: "false", "aria-label": path });
  area.value = content;
  area.addEventListener("input", dirty);
  host.append(area);
  return () => area.value;
}

function dirty() {
  $("#files-editor-dirty").textContent = editing && editing.get() !== editing.saved ? "Unsaved changes" : "";
}

async function edit(path) {
  try {
    const text = await request("GET", `${base()}/text?${query(path)}`);
    $("#files-editor").hidden = false;
    $("#files-list").hidden = true;
    $("#files-editor-name").textContent = path;
    editing = { path, saved: text.content, get: makeEditor($("#files-editor-host"), text.content, path) };
    dirty();
  } catch (err) {
    showError($("#files-error"), err.message);
  }
}

async function save() {
  if (!editing) return;
  const content = editing.get();
  await busy($("#files-editor-save"), async () => {
    try {
      await request("PUT", `${base()}/text`, { path: editing.path, content });
      editing.saved = content;
      dirty();
    } catch (err) {
      showError($("#files-error"), err.message);
    }
  });
}

function closeEditor() {
  if (editing && editing.get() !== editing.saved && !window.confirm("Discard unsaved changes?")) return;
  editing = null;
  $("#files-editor").hidden = true;
  $("#files-list").hidden = false;
  load();
}

function discardEdit() {
  return !editing || editing.get() === editing.saved || window.confirm("Discard unsaved changes?");
}

/** Open the Files tab on an instance's folder (by id) or on the models folder ("models"). */
export function openFiles(target) {
  if (findTool("files") && !discardEdit()) {
    openTool({ key: "files" });
    return;
  }
  const instanceId = target === "models" ? null : target;
  view = { root: target === "models" ? "models" : String(target), path: "", instanceId };
  const select = $("#files-root");
  const inst = instanceId === null ? null : state.instances.get(instanceId);
  select.replaceChildren(
    ...(inst ? [h("option", { value: String(inst.id), text: `${inst.name} folder` })] : []),
    h("option", { value: "models", text: "Shared models folder" }));
  select.value = view.root;
  $("#files-progress").hidden = true;
  editing = null;
  $("#files-editor").hidden = true;
  $("#files-list").hidden = false;
  openTool({
    key: "files",
    label: () => (view?.instanceId === null ? "Files — models"
      : `Files — ${state.instances.get(view?.instanceId)?.name ?? "instance"}`),
    panel: $("#files-panel"),
    keep: true,
    instanceId,
    focusTab: true,
    persist: instanceId === null ? { kind: "files", root: "models" } : { kind: "files", id: instanceId },
    canClose: discardEdit,
    onClose: () => { view = null; editing = null; },
  });
  load("");
}

export function setupFiles() {
  registerReopener("files", (saved) => openFiles(saved.id ?? "models"));
  $("#files-root").addEventListener("change", (event) => {
    view.root = event.target.value;
    load("");
  });
  $("#files-up").addEventListener("click", () => load(view.path.split("/").slice(0, -1).join("/")));
  $("#files-mkdir").addEventListener("click", mkdir);
  $("#files-upload").addEventListener("change", upload);
  $("#files-editor-save").addEventListener("click", save);
  $("#files-editor-close").addEventListener("click", closeEditor);
}
