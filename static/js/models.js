// The Models view: the shared model tree by kind, downloads with live progress, access tokens.
// Everything goes through the API; progress arrives on the events stream (`download` events).

import { request } from "./api.js";
import { $, $$, busy, confirmAction, h, openDialog, showError } from "./dom.js";
import { bytes, DASH } from "./format.js";

const downloads = new Map();
let library = null;
let shown = false;
let loaded = false;

const ACTIVE = new Set(["queued", "downloading", "verifying"]);

function eta(secondsLeft) {
  if (secondsLeft === null || secondsLeft === undefined) return DASH;
  const s = Math.round(secondsLeft);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function date(unix) {
  return unix ? new Date(unix * 1000).toLocaleString() : DASH;
}

/** The view became visible (or hidden): load once when first shown. */
export function showModels(visible) {
  shown = visible;
  if (visible && !loaded) reload();
}

/** Read the tree and the download list again (after a reconnect or a change elsewhere). */
export async function reload() {
  loaded = true;
  try {
    const [tree, list] = await Promise.all([
      request("GET", "/api/models"),
      request("GET", "/api/models/downloads"),
      loadSecrets(),
    ]);
    library = tree;
    downloads.clear();
    for (const d of list.downloads) downloads.set(d.id, d);
    showError($("#models-error"), "");
  } catch (err) {
    showError($("#models-error"), `Could not load models: ${err.message}`);
  }
  renderTree();
  renderDownloads();
}

async function reloadTree() {
  try {
    library = await request("GET", "/api/models");
  } catch (err) {
    showError($("#models-error"), `Could not load models: ${err.message}`);
  }
  renderTree();
}

/** Handlers for the events stream (main.js adds them to its LiveStream). */
export const modelEvents = {
  download: (data) => {
    if (!loaded) return;
    downloads.set(data.id, data);
    renderDownload(data);
  },
  download_removed: (data) => {
    downloads.delete(data.id);
    $(`[data-download='${CSS.escape(data.id)}']`)?.remove();
    renderDownloadsEmpty();
  },
  models_changed: () => {
    if (loaded) reloadTree();
  },
};

/** A reconnect may have missed events: read everything again if the view was ever loaded. */
export function resyncModels() {
  if (loaded) reload();
}

function renderTree() {
  const host = $("#models-tree");
  if (!library) return;
  const free = library.disk.free_bytes;
  $("#models-disk").textContent = `${bytes(free)} free of ${bytes(library.disk.total_bytes)} · ${library.models_dir}`;
  host.replaceChildren(...library.kinds.map(kindSection));
  const select = $("#download-kind");
  if (select.options.length === 0) {
    select.replaceChildren(...library.kinds.map((k) => h("option", { value: k.kind, text: k.kind })));
  }
  const moveKind = $("#model-move-kind");
  if (moveKind.options.length === 0) {
    moveKind.replaceChildren(...library.kinds.map((k) => h("option", { value: k.kind, text: k.kind })));
  }
}

function kindSection(kind) {
  const seenBy = kind.instances.length ? kind.instances.map((i) => i.name).join(", ") : "no instance yet";
  const summary = h(
    "summary",
    {},
    h("span", { class: "kind-name", text: kind.kind }),
    h("span", { class: "muted small", text: ` ${kind.count} file${kind.count === 1 ? "" : "s"} · ${bytes(kind.total_bytes)}` }),
    h("span", { class: "muted small kind-seen", text: ` · seen by ${seenBy}` }),
  );
  const body = kind.files.length
    ? h(
        "table",
        { class: "model-files" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            ...["File", "Size", "Date", "Source", "SHA-256"].map((t) => h("th", { scope: "col", text: t })),
            h("th", { scope: "col" }, h("span", { class: "sr-only", text: "Actions" })),
          ),
        ),
        h("tbody", {}, ...kind.files.map(fileRow)),
      )
    : h("p", { class: "muted small", text: "Empty." });
  return h("details", { class: "model-kind", "data-kind": kind.kind, open: kind.count > 0 }, summary, body);
}

function fileRow(file) {
  return h(
    "tr",
    { "data-model": `${file.kind}/${file.path}` },
    h("td", { class: "mono", text: file.path }),
    h("td", { class: "num mono", text: bytes(file.size_bytes) }),
    h("td", { class: "small", text: date(file.modified) }),
    h("td", { class: "small model-source" }, file.source ? h("span", { title: file.source, text: hostOf(file.source) }) : DASH),
    h("td", { class: "mono small", title: file.sha256 ?? "", text: file.sha256 ? `${file.sha256.slice(0, 12)}…` : DASH }),
    h(
      "td",
      { class: "actions" },
      h("button", { type: "button", class: "btn btn-small", "data-action": "move-model", onclick: () => openMove(file), text: "Rename / move" }),
      h("button", { type: "button", class: "btn btn-small btn-danger", "data-action": "delete-model", onclick: (e) => deleteModel(e.currentTarget, file), text: "Delete" }),
    ),
  );
}

function openMove(file) {
  const dialog = $("#model-move-dialog");
  const form = $("#model-move-form");
  $("#model-move-name").value = file.path;
  $("#model-move-kind").value = file.kind;
  $("#model-move-title").textContent = `Rename or move ${file.path}`;
  for (const el of $$("[data-error-for]", form)) showError(el, "");
  form.onsubmit = async (event) => {
    event.preventDefault();
    const body = { kind: file.kind, path: file.path, new_path: $("#model-move-name").value.trim(), new_kind: $("#model-move-kind").value };
    try {
      await request("POST", "/api/models/move", body);
      dialog.close();
      await reloadTree();
    } catch (err) {
      fieldError(form, err);
    }
  };
  openDialog(dialog);
  $("#model-move-name").focus();
}

async function deleteModel(button, file) {
  const ok = await confirmAction({
    title: `Delete ${file.path}?`,
    text: `It moves to AiKore's trash folder; instances no longer see it in ${file.kind}.`,
    confirm: "Delete",
  });
  if (!ok) return;
  await busy(button, async () => {
    try {
      await request("POST", "/api/models/delete", { kind: file.kind, path: file.path });
      await reloadTree();
    } catch (err) {
      showError($("#models-error"), err.message);
    }
  });
}

function fieldError(form, err) {
  const slot = $(`[data-error-for='${err.field}']`, form) ?? $("[data-error-for='']", form);
  showError(slot, err.message);
}

function renderDownloads() {
  const host = $("#downloads-list");
  const list = [...downloads.values()].sort((a, b) => b.created - a.created);
  host.replaceChildren(...list.map(downloadItem));
  renderDownloadsEmpty();
}

function renderDownloadsEmpty() {
  $("#downloads-empty").hidden = downloads.size > 0;
}

function renderDownload(data) {
  const existing = $(`[data-download='${CSS.escape(data.id)}']`);
  const item = downloadItem(data);
  if (existing) existing.replaceWith(item);
  else $("#downloads-list").prepend(item);
  renderDownloadsEmpty();
}

function progressText(d) {
  if (d.state === "done") return `${bytes(d.total_bytes)} · done`;
  if (d.state === "failed" || d.state === "cancelled") return d.state;
  const of = d.total_bytes ? ` of ${bytes(d.total_bytes)}` : "";
  const speed = d.state === "downloading" ? ` · ${bytes(d.speed_bytes_per_second)}/s · ETA ${eta(d.eta_seconds)}` : "";
  return `${d.state} · ${bytes(d.received_bytes)}${of}${speed}`;
}

function downloadItem(d) {
  const name = d.filename ?? d.url;
  const bar = h("progress", { max: d.total_bytes || 1, "aria-label": `Progress of ${name}` });
  if (d.total_bytes) bar.value = d.state === "done" ? d.total_bytes : d.received_bytes;
  else if (d.state === "done") bar.value = 1;
  else bar.removeAttribute("value");
  const active = ACTIVE.has(d.state);
  return h(
    "li",
    { class: "download", "data-download": d.id, "data-state": d.state },
    h("div", { class: "download-head" },
      h("span", { class: "mono", text: `${d.kind}/${name}` }),
      h("span", { class: "muted small", text: d.source }),
      active
        ? h("button", { type: "button", class: "btn btn-small", "data-action": "cancel-download", onclick: (e) => busy(e.currentTarget, () => act("POST", `/api/models/downloads/${d.id}/cancel`)), text: "Cancel" })
        : null,
      d.state === "failed" || d.state === "cancelled"
        ? h("button", { type: "button", class: "btn btn-small", "data-action": "retry-download", onclick: (e) => busy(e.currentTarget, () => act("POST", `/api/models/downloads/${d.id}/retry`)), text: "Retry" })
        : null,
      active
        ? null
        : h("button", { type: "button", class: "btn btn-small btn-ghost", "data-action": "remove-download", onclick: (e) => busy(e.currentTarget, () => act("DELETE", `/api/models/downloads/${d.id}`)), text: "Remove" }),
    ),
    bar,
    h("p", { class: "small download-progress", "data-show": "progress", text: progressText(d) }),
    d.error ? h("p", { class: "field-error", role: "alert", text: d.error }) : null,
  );
}

async function act(method, path) {
  try {
    await request(method, path);
  } catch (err) {
    showError($("#models-error"), err.message);
  }
}

function downloadBody(form) {
  const source = $("#download-source").value;
  const value = (name) => form.elements[name].value.trim();
  const body = { source, kind: $("#download-kind").value };
  if (source === "huggingface" && value("repo")) {
    body.repo = value("repo");
    body.file = value("file");
    if (value("revision")) body.revision = value("revision");
  } else {
    body.url = value("url");
  }
  if (value("filename")) body.filename = value("filename");
  if (value("sha256")) body.sha256 = value("sha256");
  return body;
}

function setupDownloadForm() {
  const form = $("#download-form");
  const source = $("#download-source");
  const sync = () => {
    $("#download-hf-fields").hidden = source.value !== "huggingface";
  };
  source.addEventListener("change", sync);
  sync();
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    for (const el of $$("[data-error-for]", form)) showError(el, "");
    await busy($("#download-submit"), async () => {
      try {
        const d = await request("POST", "/api/models/downloads", downloadBody(form));
        // The events stream may already have brought a later state of this download (a 404 fails
        // within milliseconds, before this answer is read): the answer must not turn it back to queued.
        if (!downloads.has(d.id)) {
          downloads.set(d.id, d);
          renderDownload(d);
        }
        form.elements.url.value = "";
        form.elements.filename.value = "";
        form.elements.sha256.value = "";
      } catch (err) {
        fieldError(form, err);
      }
    });
  });
}

async function loadSecrets() {
  const status = await request("GET", "/api/models/secrets");
  for (const [name, info] of Object.entries(status)) {
    const el = $(`[data-secret-status='${name}']`);
    if (el) el.textContent = info.set ? "set" : "not set";
  }
  return status;
}

function setupSecrets() {
  for (const form of $$("[data-secret-form]")) {
    const name = form.dataset.secretForm;
    const input = $("input", form);
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const forget = event.submitter?.value === "forget";
      try {
        if (forget) await request("DELETE", `/api/models/secrets/${name}`);
        else await request("PUT", `/api/models/secrets/${name}`, { value: input.value });
        input.value = "";
        showError($("[data-error-for]", form), "");
        await loadSecrets();
      } catch (err) {
        showError($("[data-error-for]", form), err.message);
      }
    });
  }
}

export function setupModels() {
  setupDownloadForm();
  setupSecrets();
  $("#models-refresh").addEventListener("click", () => reload());
  if (shown) reload();
}
