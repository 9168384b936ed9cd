// The outputs gallery: thumbnails newest first, live as files appear, full view with the
// generation parameters the image carries, download and delete.

import { request } from "./api.js";
import { $, confirmAction, h, openDialog, showError } from "./dom.js";
import * as fmt from "./format.js";
import { LiveStream } from "./live.js";
import { state } from "./state.js";

const PAGE = 200;
let gallery = null; // { id, items: Map(path → item), stream }

const url = (kind, path, extra = "") =>
  `/api/instances/${gallery.id}/outputs/${kind}?path=${encodeURIComponent(path)}${extra}`;

function card(item) {
  const media = item.kind === "image"
    ? h("img", { src: url("thumbnail", item.path, `&v=${item.mtime}`), alt: item.name, loading: "lazy" })
    : h("video", { src: url("file", item.path), preload: "metadata", muted: true });
  return h("button", { type: "button", class: "output-card", "data-path": item.path, title: item.path,
    onclick: () => show(item) }, media, h("span", { class: "output-name small", text: item.name }));
}

function render() {
  const items = [...gallery.items.values()].sort((a, b) => b.mtime - a.mtime || a.path.localeCompare(b.path));
  $("#outputs-grid").replaceChildren(...items.map(card));
  $("#outputs-count").textContent = `${items.length} item${items.length === 1 ? "" : "s"}`;
  $("#outputs-empty").hidden = items.length > 0;
}

function row(label, value) {
  return h("tr", {}, h("th", { text: label }), h("td", { class: "mono", text: String(value) }));
}

function parameterView(params) {
  const parts = [];
  if (params.comfyui) {
    const s = params.comfyui.summary || {};
    const rows = Object.entries(s).filter(([k]) => k !== "prompts").map(([k, v]) => row(k, v));
    parts.push(h("h3", { text: "ComfyUI" }));
    for (const text of s.prompts || []) parts.push(h("p", { class: "output-prompt", text }));
    if (rows.length) parts.push(h("table", { class: "output-params" }, h("tbody", {}, rows)));
    for (const key of ["prompt", "workflow"]) {
      if (params.comfyui[key]) {
        parts.push(h("details", {}, h("summary", { text: `${key} (JSON)` }),
          h("pre", { class: "mono small", text: JSON.stringify(params.comfyui[key], null, 2) })));
      }
    }
  }
  if (params.a1111) {
    parts.push(h("h3", { text: "A1111 / Forge" }), h("p", { class: "output-prompt", text: params.a1111.prompt }));
    if (params.a1111.negative_prompt) {
      parts.push(h("p", { class: "output-prompt negative", text: `Negative: ${params.a1111.negative_prompt}` }));
    }
    parts.push(h("table", { class: "output-params" },
      h("tbody", {}, Object.entries(params.a1111.settings).map(([k, v]) => row(k, v)))));
  }
  if (!parts.length) parts.push(h("p", { class: "muted", text: "No generation parameters in this file." }));
  return parts;
}

async function show(item) {
  const viewer = $("#outputs-viewer");
  viewer.hidden = false;
  $("#outputs-grid").hidden = true;
  const media = item.kind === "image"
    ? h("img", { src: url("file", item.path, `&v=${item.mtime}`), alt: item.name })
    : h("video", { src: url("file", item.path), controls: true, autoplay: true });
  $("#outputs-media").replaceChildren(media);
  $("#outputs-viewer-name").textContent = `${item.path} · ${fmt.bytes(item.size)} · ${new Date(item.mtime * 1000).toLocaleString()}`;
  $("#outputs-download").href = url("file", item.path, "&download=1");
  $("#outputs-delete").onclick = () => remove(item);
  $("#outputs-params").replaceChildren(h("p", { class: "muted", text: "Reading parameters…" }));
  try {
    $("#outputs-params").replaceChildren(...parameterView(await request("GET", url("parameters", item.path))));
  } catch (err) {
    $("#outputs-params").replaceChildren(h("p", { class: "field-error", text: err.message }));
  }
}

function back() {
  $("#outputs-viewer").hidden = true;
  $("#outputs-grid").hidden = false;
  $("#outputs-media").replaceChildren();
}

async function remove(item) {
  const ok = await confirmAction({ title: `Delete ${item.name}?`, text: "It is moved to AiKore's trash folder.",
    confirm: "Delete" });
  if (!ok) return;
  try {
    await request("DELETE", url("file", item.path));
    gallery.items.delete(item.path);
    back();
    render();
  } catch (err) {
    showError($("#outputs-error"), err.message);
  }
}

/** Open the gallery of an instance's INSTANCE_OUTPUT_DIR, following new files live. */
export async function openOutputs(id) {
  const inst = state.instances.get(id);
  if (!inst) return;
  gallery = { id, items: new Map(), stream: null };
  $("#outputs-title").textContent = `Outputs — ${inst.name}`;
  showError($("#outputs-error"), "");
  back();
  openDialog($("#outputs-dialog"), {
    onClose: () => {
      gallery?.stream?.stop();
      gallery = null;
    },
  });
  const mine = gallery;
  mine.stream = new LiveStream(`/api/instances/${id}/outputs/stream`, {
    handlers: {
      added: (item) => { if (gallery === mine) { mine.items.set(item.path, item); render(); } },
      removed: (item) => { if (gallery === mine) { mine.items.delete(item.path); render(); } },
    },
  });
  mine.stream.start();
  try {
    const page = await request("GET", `/api/instances/${id}/outputs?limit=${PAGE}`);
    if (gallery !== mine) return;
    for (const item of page.items) mine.items.set(item.path, item);
    render();
  } catch (err) {
    showError($("#outputs-error"), err.message);
  }
}

export function setupOutputs() {
  $("#outputs-back").addEventListener("click", back);
}
